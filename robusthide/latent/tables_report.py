"""The pages of ``robusthide latent tables`` (:mod:`robusthide.latent.tables`): paper 004's Tables 1-4 in its row
order beside ours, the rows a run lacks and why, the settings in words, and the hand-written reading kept.
"""

from __future__ import annotations

from pathlib import Path

from robusthide.latent import defaults as D
from robusthide.latent import paper004 as P
from robusthide.latent import steganalysis as sa
from robusthide.latent.report import md_head

#: the heading above which a page is regenerated and below which a person's reading is kept
READING = "## Reading"
READING_PLACEHOLDER = ("_To be written by hand once the full run is in: what matches the paper, what does not, and"
                       " why. This text is kept when the page is regenerated._")

def _order(rows: dict, paper: dict) -> list[str]:
    """The paper's rows in its order, each codec-alone row just before its edited row, then the others. Where
    the paper has one hyperbase / ELICbase row (Table 4), all of ours of that kind stand in its place."""
    out: list[str] = []
    for r in paper:
        kind = r.split("_")[0] + "_"
        if kind in ("hyperbase_", "ELICbase_") and sum(p.startswith(kind) for p in paper) == 1:
            out += sorted(m for m in rows if m.startswith(kind))
        elif r in rows:
            alone = r.replace("base_", "_", 1)
            if r.startswith(("hyperbase_", "ELICbase_")) and alone in rows and alone not in out:
                out.append(alone)
            out.append(r)
    return out + [r for r in rows if r not in out]


def missing_rows(rows: dict, paper: dict) -> list[tuple[str, str]]:
    """The paper's rows this run lacks, each with the reason."""
    out = []
    for r in paper:
        if r in rows:
            continue
        if r.startswith(("hyperbase", "ELICbase")):
            kind = "ELIC-style" if r.startswith("ELIC") else "hyperprior"
            why = f"no {kind} codec labelled {r.split('_')[1]} given: --codec {r.split('_')[1]}=WEIGHTS"
        elif r.startswith("LISO-JPEG"):
            why = "no LISO-JPEG weights given: --liso-jpeg"
        elif r.startswith("LISO"):
            why = "no LISO weights given: --liso"
        else:
            why = "not run: --methods"
        out.append((r, why))
    return out


def _fmt(v: float | None, f: str = ".2f") -> str:
    return "-" if v is None else format(v, f)


def _keep_reading(path: Path) -> str:
    if path.is_file():
        text = path.read_text()
        i = text.find(READING)
        if i >= 0:
            return text[i:].rstrip() + "\n"
    return f"{READING}\n\n{READING_PLACEHOLDER}\n"


def _intro(r: dict) -> str:
    s = r["settings"]
    e = s["edit"]
    lam1 = "codec" if e["lambda1"] is None else format(e["lambda1"], "g")
    codecs = ", ".join(f"{c['label']} (`{c['path']}`, N {c['N']} / M {c['M']})" for c in s["codecs"]) or "none"
    f = s.get("fnns") or {"steps": s.get("fnns_steps"), "lr": 0.1, "eps": 0.3}
    l5 = (f"{e['lambda5']:.4g} x (codec lambda / {D.LAMBDA5_REF_LMBDA:g})" if s.get("scale_lambda5")
          else f"{e['lambda5']:.4g}")
    return (f"1 bit per pixel, Bernoulli(1/2). Fixed decoder `{s['decoder']}` (id {s['decoder_id']}). Code editing:"
            f" {e['iters']} Adam iterations, lr {e['lr']:g}, lambda1 {lam1}, lambdas 2-5 = {e['lambda2']:g},"
            f" {e['lambda3']:g}, {e['lambda4']:.4g}, {l5}, rounding {e['rounding']}, CE"
            f" {e['ce_reduction']}"
            + (f", then at most {e['lattice']} rounds of lattice descent on the coded y (ours)" if e.get("lattice")
               else "")
            + f"; 1 - SSIM for LPIPS, no discriminator. FNNS: {f['steps']} L-BFGS steps at lr"
            f" {f['lr']:g}, perturbation within +-{f['eps']:g}."
            f" LISO: `{s['liso'] or '-'}`, LISO-JPEG: `{s['liso_jpeg'] or '-'}`. Seed {s['seed']}."
            f" Codecs: {codecs}."
            f" This call computed {s['computed_cpu_s']:.0f} CPU s ({s['seconds']:.0f} s wall); the rest came from"
            f" the cache. FID is not measured: its Inception weights cannot be had here (docs/latent.md).")


def _set_line(st: dict) -> str:
    counts: dict[str, int] = {}
    for im in st["images"]:
        counts[im["photo"]] = counts.get(im["photo"], 0) + 1
    return (f"Stand-in set `{st['set']}`: {st['n']} crops of {st['size']} px from {len(st['photos'])} val photos"
            f" ({st['faces']} crops centred on a detected face): "
            + ", ".join(f"{p} x{k}" for p, k in sorted(counts.items())) + ".")


def table_markdown(r: dict, old: Path | None = None) -> str:
    """The page of one table (1-3: one set; 4: the steganalysis of three sets), ending with the kept reading."""
    k = r["table"]
    s = r["settings"]
    lines = md_head(f"Paper 004 Table {k} on our stand-in photos" + (
        f" ({P.TABLES_OF_SET[r['sets'][0]['set']][1]} -> `{r['sets'][0]['set']}`)" if k != 4 else
        " (steganalysis)"), _intro(r), command=s.get("command", ""))
    for st in r["sets"]:
        name = st["set"]
        tno, pname, psize = P.TABLES_OF_SET[name]
        lines += [f"## {pname} -> `{name}`" if k == 4 else "## Rows", "", _set_line(st),
                  f"The paper: 100 random {pname} validation images, {psize} x {psize} px.", ""]
        rows = st["rows"]
        if k != 4:
            paper = P.PAPER_TABLES[name]
            lines += ["| method | PSNR | bpp | accuracy | RSBPP rate | FID | flagged (fused) | balanced acc. (fused) |"
                      " CPU s / image | paper PSNR / BPP / acc. / RSBPP rate / FID |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for m in _order(rows, paper):
                x, p = rows[m], paper.get(m)
                ptxt = "-" if p is None else f"{p[0]:g} / {p[1]:g} / {p[2]:g} % / {p[3]:g} / {_fmt(p[4], 'g')}"
                lines.append(f"| {m} | {x['psnr']:.2f} | {x['bpp']:.3f} | {100 * x['accuracy']:.2f} % |"
                             f" {x['rsbpp_rate']:.3f} | n/a | {100 * x['detected']['fused']:.0f} % |"
                             f" {100 * x['balanced_accuracy']['fused']:.0f} % | {x['cpu_s']:.1f} | {ptxt} |")
        else:
            paper4 = P.TABLE4[name]
            lines += ["| method | error rate | PSNR | detection (flagged, fused) | balanced acc. (fused) |"
                      " paper error / PSNR / detection |", "|---|---|---|---|---|---|"]
            for m in _order(rows, paper4):
                x = rows[m]
                p = paper4.get(m) or (paper4["hyperbase_8"] if m.startswith("hyperbase") else
                                      paper4["ELICbase_6"] if m.startswith("ELICbase") else None)
                note = "" if m in paper4 or p is None else (" (paper: q8)" if m.startswith("hyper") else " (paper: q6)")
                ptxt = "-" if p is None else f"{p[0]:g} % / {p[1]:g} / {p[2]:g} %{note}"
                lines.append(f"| {m} | {100 * x['error_rate']:.2f} % | {x['psnr']:.2f} |"
                             f" {100 * x['detected']['fused']:.0f} % | {100 * x['balanced_accuracy']['fused']:.0f} % |"
                             f" {ptxt} |")
        if st["missing"]:
            lines += ["", "Rows of the paper not in this run: " + "; ".join(f"{m} ({w})" for m, w in st["missing"])
                      + "."]
        names = " / ".join(k2.replace("_", " ") for k2 in sa.THRESHOLDS)
        lines += ["", f"Per-detector flag rates on the stego images ({names}):", ""]
        for m in _order(rows, P.TABLE4[name] if k == 4 else P.PAPER_TABLES[name]):
            d = rows[m]["detected"]
            lines.append(f"- {m}: {' / '.join(f'{100 * d[k2]:.0f} %' for k2 in sa.THRESHOLDS)}")
        lines.append("")
    lines += [f"The crops: `latent-table{k}.png` (the first 16 of each set, one row per set).", "",
              "Paper figures: robusthide/latent/paper004.py. " + P.NOTES[0], "",
              "CPU s / image: process CPU seconds of the row's group per image (rows computed together share it:"
              " FNNS and its saved forms are one FNNS run, hyper_L and hyperbase_L one editing run).", "",
              "Detection: the share of stego images the fused StegExpose-style detector flags (the paper's"
              " 'detection accuracy'); balanced accuracy: stego against its clean counterpart (the cover, its JPEG"
              " at the same quality, or the codec's own output for the edited rows).", ""]
    lines.append(_keep_reading(old) if old is not None else f"{READING}\n\n{READING_PLACEHOLDER}\n")
    return "\n".join(lines)
