"""Paper 004's published figures (Tables 1-4), as printed, for the tables of :mod:`robusthide.latent.tables`.

Tables 1-3: method -> (PSNR dB, BPP, accuracy %, RSBPP rate, FID or None). Table 4: data set -> method ->
(error rate %, PSNR dB, detection accuracy %). Oddities are kept as printed and listed in ``NOTES``.
"""

from __future__ import annotations

_T = tuple[float, float, float, float, float | None]

TABLE1_CELEBA: dict[str, _T] = {
    "FNNS": (27.55, 96.00, 100.00, 0.010, None), "FNNS-fp16": (27.5, 48.00, 99.8, 0.031, None),
    "FNNS-png": (27.5, 16.68, 99.69, 0.060, 126.39), "LISO-png": (35.62, 17.08, 100.00, 0.062, 108.30),
    "FNNS-jpg90": (25.63, 3.77, 56.79, 0.036, 133.14), "FNNS-jpg70": (25.43, 2.55, 54.76, 0.037, 133.47),
    "FNNS-jpg50": (34.74, 1.15, 51.96, 0.034, 135.74), "LISO-jpg90": (32.68, 2.12, 55.61, 0.036, 72.04),
    "LISO-jpg70": (25.43, 1.03, 51.86, 0.036, 54.76), "LISO-jpg50": (34.74, 0.74, 51.04, 0.028, 54.80),
    "FNNS-JPG50_TRAIN": (17.50, 2.80, 68.16, 0.130, 229.83), "FNNS-JPG70_TRAIN": (17.54, 3.84, 73.02, 0.120, 248.98),
    "FNNS-JPG90_TRAIN": (20.25, 5.76, 78.32, 0.0983, 204.66),
    "hyperbase_3": (25.27, 1.386, 66.40, 0.237, 212.15), "hyperbase_4": (25.8, 1.748, 71.93, 0.251, 178.06),
    "hyperbase_5": (26.40, 1.508, 74.80, 0.329, 155.01), "hyperbase_6": (26, 3.115, 85.69, 0.2291, 134.24),
    "hyperbase_7": (26.5, 3.239, 85.40, 0.219, 133.23), "hyperbase_8": (28.15, 3.46, 84.80, 0.201, 101.95),
    "ELICbase_3": (22.1, 2.718, 60.49, 0.077, 305.4), "ELICbase_4": (24.06, 2.468, 64.06, 0.114, 238.1),
    "ELICbase_5": (26.42, 2.7, 83.00, 0.244, 160.84), "ELICbase_6": (29.22, 2.69, 87.10, 0.276, 129.72),
}

TABLE2_DIV2K: dict[str, _T] = {
    "FNNS": (23.04, 96.00, 100.00, 0.010, None), "FNNS-fp16": (23.05, 48.00, 100.00, 0.031, None),
    "FNNS-png": (23.04, 21.78, 99.98, 0.046, 208.15), "LISO-png": (33.83, 17.08, 100.00, 0.062, 30.53),
    "FNNS-jpg90": (22.87, 5.15, 62.45, 0.048, 112.6), "FNNS-jpg70": (22.76, 2.86, 58.40, 0.059, 111.26),
    "FNNS-jpg50": (22.68, 1.98, 56.31, 0.064, 117.57), "LISO-jpg90": (27.44, 3.35, 57.40, 0.044, 44.14),
    "LISO-jpg70": (29.14, 1.61, 52.09, 0.026, 47.54), "LISO-jpg50": (28.66, 1.19, 50.69, 0.012, 52.05),
    "FNNS-JPG50_TRAIN": (16.543, 2.944, 70.75, 0.141, 305.85),
    "FNNS-JPG70_TRAIN": (17.237, 3.907, 76.05, 0.133, 323.32),
    "FNNS-JPG90_TRAIN": (20.37, 5.86, 66.00, 0.055, 165.11), "LISO-JPEG": (15.41, 4.20, 99.47, 0.236, 292.24),
    "hyperbase_3": (23.08, 1.64, 74.18, 0.295, 118.53), "hyperbase_4": (23.20, 1.57, 80.58, 0.376, 123.83),
    "hyperbase_5": (23.74, 1.66, 81.21, 0.376, 114.67), "hyperbase_6": (23.28, 3.53, 91.75, 0.237, 104.43),
    "hyperbase_7": (23.82, 3.42, 92.58, 0.249, 95.98), "hyperbase_8": (24.90, 3.83, 92.20, 0.220, 84.73),
    "ELICbase_3": (19.76, 2.61, 68.60, 0.135, 202.96), "ELICbase_4": (21.58, 2.39, 68.40, 0.163, 167.04),
    "ELICbase_5": (24.71, 2.46, 84.15, 0.278, 111.15), "ELICbase_6": (27.80, 2.82, 88.00, 0.270, 82.14),
}

TABLE3_COCO: dict[str, _T] = {
    "FNNS": (30.37, 96.00, 100.00, 0.010, None), "FNNS-fp16": (30.37, 48.00, 100.00, 0.021, None),
    "FNNS-png": (30.36, 19.03, 99.95, 0.052, 111.16), "LISO-png": (33.83, 18.12, 100.00, 0.054, 34.65),
    "FNNS-jpg90": (29.94, 3.64, 57.65, 0.042, 109.43), "FNNS-jpg70": (29.68, 1.79, 53.76, 0.042, 181.18),
    "FNNS-jpg50": (29.40, 1.25, 52.51, 0.040, 178.09), "LISO-jpg90": (30.68, 1.88, 53.65, 0.03, 109.43),
    "LISO-jpg70": (29.68, 1.35, 51.76, 0.025, 181.18), "LISO-jpg50": (28.46, 1.08, 50.30, 0.022, 178.09),
    "FNNS-JPG50_TRAIN": (16.77, 2.88, 70.20, 0.140, 280.31), "FNNS-JPG70_TRAIN": (17.49, 3.85, 74.10, 0.125, 227.34),
    "FNNS-JPG90_TRAIN": (21.00, 5.53, 77.30, 0.099, 167.48),
    "hyperbase_3": (23.49, 1.40, 69.60, 0.280, 186.99), "hyperbase_4": (23.14, 1.51, 74.25, 0.322, 165.04),
    "hyperbase_5": (23.19, 1.564, 76.48, 0.339, 150.29), "hyperbase_6": (22.01, 3.58, 87.69, 0.211, 142.31),
    "hyperbase_7": (22.20, 3.59, 87.30, 0.208, 133.84), "hyperbase_8": (22.72, 3.92, 86.54, 0.186, 119.06),
    "ELICbase_3": (21.56, 2.032, 59.60, 0.094, 228.12), "ELICbase_4": (22.67, 1.963, 67.60, 0.179, 205.49),
    "ELICbase_5": (24.95, 2.344, 84.60, 0.295, 137.21), "ELICbase_6": (26.89, 2.735, 86.75, 0.269, 116.55),
}

#: Table 4 (caption: jpg and diffjpg at quality 90, Hyperbase is quality 8, ELICbase quality 6)
TABLE4: dict[str, dict[str, tuple[float, float, float]]] = {
    "celeba": {"FNNS": (0.0, 27.55, 62), "FNNS-jpg90": (43.21, 27.5, 44), "FNNS-JPG90_TRAIN": (21.68, 20.25, 90),
               "hyperbase_8": (15.20, 28.15, 36), "ELICbase_6": (12.90, 29.22, 28), "LISO": (0.0, 30.15, 2),
               "LISO-jpg90": (44.39, 32.68, 14)},
    "coco": {"FNNS": (0.0, 30.37, 39), "FNNS-jpg90": (42.35, 29.94, 15), "FNNS-JPG90_TRAIN": (22.70, 21.00, 61),
             "hyperbase_8": (13.46, 22.72, 23), "ELICbase_6": (13.25, 26.89, 7), "LISO": (0.0, 30.42, 1),
             "LISO-jpg90": (46.35, 28.46, 4)},
    "div2k": {"FNNS": (0.0, 23.04, 39), "FNNS-jpg90": (37.55, 23.04, 15), "FNNS-JPG90_TRAIN": (24.50, 20.37, 61),
              "hyperbase_8": (7.80, 24.9, 23), "ELICbase_6": (12.0, 27.8, 7), "LISO": (0.0, 30.95, 0),
              "LISO-jpg90": (43.60, 27.44, 4)},
}

#: our photo set -> (the paper's table, the paper's data set, the paper's crop size)
TABLES_OF_SET = {"celeba": (1, "CelebA", 192), "div2k": (2, "DIV2K", 512), "coco": (3, "MS COCO", 512)}
PAPER_TABLES = {"celeba": TABLE1_CELEBA, "div2k": TABLE2_DIV2K, "coco": TABLE3_COCO}

NOTES = (
    "Figures as printed. Table 1's FNNS-jpg50 and LISO-jpg50 PSNR (34.74) repeat each other, as do its "
    "FNNS-jpg70 and LISO-jpg70 PSNR (25.43); Table 3's LISO-jpg rows repeat the FNNS-jpg FID column. Table 4's "
    "MS COCO and DIV2K detection columns are identical (39/15/61/23/7/1-0/4 %), and its DIV2K 'FNNS-jpg' row "
    "lost its quality (90 per the caption). The paper's hyperbase_q / ELICbase_q are CompressAI's "
    "bmshj2018-hyperprior and an ELIC re-implementation at pretrained quality q (M 192 for q1-5, M 320 for q6-8).",
)
