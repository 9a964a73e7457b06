"""Blind re-synchronisation: the searches extraction runs before decoding (this project's design).

Each search lists hypotheses of what was done to a marked image (a crop, a reframing, a rotation, a flip, ...),
shows the decoder the image put back under each one, and pays for all of them in the p-value, so that the
false-positive rate stays within its design bound however many were tried. The whole-image models read
``staged`` by default: the plain read first, then each search only when the ones before detect nothing; the
periodic ``geo`` models (:mod:`robusthide.nets.geo`) read ``geometry``, their fold search.

One module per part:

- :mod:`~robusthide.watermark.sync.views`: a hypothesis' view of the image (:func:`affine_views`), the
  centred crops, mirror images, and the screened decoder pass for searches with many rows;
- :mod:`~robusthide.watermark.sync.bands`: reframings (a band of a frame of another aspect ratio) and slides;
- :mod:`~robusthide.watermark.sync.corner`: crops that kept one corner and the aspect ratio;
- :mod:`~robusthide.watermark.sync.rotation`: rotations to 5 degrees, turns to 45 and quarter turns;
- :mod:`~robusthide.watermark.sync.fold` and :mod:`~robusthide.watermark.sync.lattice`: the geometry search
  of the ``geo`` models;
- :mod:`~robusthide.watermark.sync.stages`: every search as stages (:func:`search_logits`,
  :func:`search_stages`, :func:`staged_stages`);
- :mod:`~robusthide.watermark.sync.decision`: the order of decoding and the p-value over a search
  (:func:`decode_search`, :func:`decode_stages`, :data:`STAGED_SHARES`).

The inset and anywhere searches are :mod:`robusthide.watermark.inset` and :mod:`robusthide.watermark.anywhere`.
"""

from robusthide.watermark.sync.bands import (  # noqa: F401
    REFRAME_ANCHORS,
    REFRAME_ASPECTS,
    REFRAME_MIN_CHANGE,
    SLIDE_ASPECTS,
    SLIDE_BANDS,
    SLIDE_MIN_BAND,
    SLIDE_STEP,
    SLIDE_WINDOW,
    band_text,
    mirror_reframings,
    reframe_hypotheses,
    slide_hypotheses,
    slide_logits,
)
from robusthide.watermark.sync.corner import (  # noqa: F401
    CORNER_MIN_SIDE,
    CORNER_STEP,
    CORNERS,
    corner_hypotheses,
    corner_text,
)
from robusthide.watermark.sync.decision import (  # noqa: F401
    GEOMETRY_TRIES,
    ROTATION_TRIES,
    SEARCH_MODES,
    STAGED_SHARES,
    check_search,
    decision_args,
    decode_search,
    decode_stages,
    hypothesis_weights,
    most_confident,
    ranking_scores,
    shift_group,
    staged_hypotheses,
)
from robusthide.watermark.sync.fold import (  # noqa: F401
    GEOMETRY_ANGLES,
    GEOMETRY_CANDIDATES,
    GEOMETRY_FOLD_ANGLE_SCALES,
    GEOMETRY_FOLD_ANGLES,
    GEOMETRY_FOLD_OFFSETS,
    GEOMETRY_FOLD_RATIOS,
    GEOMETRY_FOLD_REFINE,
    GEOMETRY_NARROW_SCALES,
    GEOMETRY_NARROW_WITH,
    GEOMETRY_PHASE_SHARE,
    GEOMETRY_PHASE_TOP,
    GEOMETRY_PHASES,
    GEOMETRY_POOL_FRAMES,
    GEOMETRY_QUICK_OFFSETS,
    GEOMETRY_QUICK_SHARE,
    GEOMETRY_REFINE_TOP,
    GEOMETRY_SCALES,
    fold_energy,
    fold_search_logits,
    geometry_hypotheses,
    geometry_views,
    pooled_maps,
    quick_fold_logits,
    read_folds,
    rotated_maps,
    turned_view_maps,
    view_maps,
)
from robusthide.watermark.sync.lattice import (  # noqa: F401
    GEOMETRY_LATTICE_ANGLES,
    GEOMETRY_LATTICE_HARMONICS,
    GEOMETRY_LATTICE_RATIOS,
    GEOMETRY_ROTATION_CANDIDATES,
    GEOMETRY_ROTATION_FOLD_ANGLES,
    GEOMETRY_ROTATION_SHARE,
    lattice_angles,
    lattice_scores,
    lattice_transform,
    rotation_fold_logits,
)
from robusthide.watermark.sync.rotation import (  # noqa: F401
    QUARTER_TURNS,
    ROTATION_ANGLES,
    TURN_ANGLES,
    TURN_CROP_MAX,
    rotation_views,
    turn_hypotheses,
    turn_views,
    turned_back_views,
)
from robusthide.watermark.sync.stages import (  # noqa: F401
    frames_stage_logits,
    search_logits,
    search_stages,
    staged_stages,
)
from robusthide.watermark.sync.views import (  # noqa: F401
    MIN_SIDE,
    SCREEN_TOP,
    Frames,
    affine_views,
    centred_crop_views,
    frame_list,
    mirror_hypotheses,
    mirror_views,
    native_bf16,
    screened_logits,
    side_fractions,
)
