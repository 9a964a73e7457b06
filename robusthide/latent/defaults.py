"""The settings ``robusthide latent tables`` runs with by default, tuned at 256 px (issue 24, item 5).

Plain numbers, no imports, so that the CLI can show them as its defaults without loading torch. The probes
behind each value, with their commands, are in docs/results/latent-tables-tuning.md:

* **Code editing.** Adam at lr 0.1 for 200 iterations (the paper's lr 1e-3 leaves our codecs near chance,
  docs/latent.md) and lambda5 = 1/288 for the q6 codecs. The message term of eq. 1 is a *sum* over the
  D x H x W bits while the image terms are means, so at 256 px it weighs 4 times what it weighs at 128 px: the
  paper's 1/48 at 256 px wrecked the image (14 dB). 1/288 puts hyperbase_6 at the paper's PSNR (about 23 dB),
  where the curve has levelled off by 200 iterations.
* **One lambda5 for every codec**, as in the paper (lambda1 is each codec's own lambda x 255^2). Scaling lambda5
  by the codec's lambda (``--scale-lambda5``: one lambda5 / lambda1 for every rate) was tried: q3 then stays
  at 55 % and 29 dB, where one lambda5 gives it the paper's accuracy at a lower PSNR.
* **FNNS.** L-BFGS (lr 0.1, 30 steps) with the perturbation bounded by eps = 0.1 instead of FNNS's 0.3: where
  not every bit reads, L-BFGS fills the whole +-0.3 box (11-12 dB).
"""

from __future__ import annotations

#: EditConfig fields of `latent tables` (the others keep the paper's values: lambda2 16, lambda4 1/244, ...)
TABLES_EDIT: dict[str, float | int] = {"iters": 200, "lr": 0.1, "lambda5": 1.0 / 288.0}
#: FnnsConfig fields of `latent tables`
TABLES_FNNS: dict[str, float | int] = {"steps": 30, "lr": 0.1, "eps": 0.1}
#: scale lambda5 per codec by its lambda over LAMBDA5_REF_LMBDA (the q6 codecs' lambda, where lambda5 was tuned)
TABLES_SCALE_LAMBDA5 = False
LAMBDA5_REF_LMBDA = 0.0483
