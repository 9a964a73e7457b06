"""Evaluation under real codecs (issue 7): attack lists, robustness matrices, strength sweeps, peers.

>>> from robusthide.evaluation import robustness_matrix, write_matrix
>>> res = robustness_matrix("default", "data/photos", "jpeg:q=10,50,90;webp:q=50;identity", seed=0)
>>> write_matrix(res, "docs/results/default-matrix")   # .md .json .csv .png
"""

from robusthide.evaluation.attacks_grammar import (
    DEFAULT_ATTACKS,
    DISTORTIONS,
    Attack,
    attack_runner,
    expand_attacks,
    parse_attacks,
    validate_attacks,
)
from robusthide.evaluation.images import ImageItem, image_set, list_image_files
from robusthide.evaluation.matrix import ModelMethod, as_method, robustness_matrix, strength_sweep
from robusthide.evaluation.matrix_report import (
    compare_markdown,
    matrix_markdown,
    plot_matrix,
    plot_sweep,
    sweep_markdown,
    write_comparison,
    write_matrix,
    write_sweep,
)
from robusthide.evaluation.peers import PEERS, get_peer, parse_peers

__all__ = [
    "DEFAULT_ATTACKS", "DISTORTIONS", "PEERS", "Attack", "ImageItem", "ModelMethod", "as_method", "attack_runner",
    "compare_markdown",
    "expand_attacks", "get_peer", "image_set", "list_image_files", "matrix_markdown", "parse_attacks",
    "parse_peers", "plot_matrix", "plot_sweep", "robustness_matrix", "strength_sweep", "sweep_markdown",
    "validate_attacks", "write_comparison", "write_matrix", "write_sweep",
]
