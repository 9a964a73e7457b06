"""Mark or verify many images with Ray Data, on one machine or a cluster (docs/scale.md).

The inputs are a folder (every image under it), a file list (one path a line) or a Parquet table with a
``path`` column (and, for marking, an optional ``message`` column: one message per image). The driver builds
the list of tasks, leaves out the ones already done, and Ray Data streams them through ``workers`` actors,
each holding one :class:`robusthide.watermark.watermarker.Watermarker` (the model is loaded once per actor,
not per image) and processing ``batch_size`` images per call with :meth:`Watermarker.embed_batch` /
:meth:`Watermarker.extract_batch`. Each run adds its rows to the results table, a folder of Parquet (or CSV)
files with the columns of :data:`COLUMNS`:

* ``path``: the input; ``output``: the marked file (marking only);
* ``message``: the message hidden (marking) or read (verifying), as text; ``detected`` and ``p_value``: the
  detection test on the marked file as saved (marking: read back from disk) or on the input
  (verifying); ``error``: the one-line error of a file that failed (the other columns then empty).

Resumable: a task is skipped when its path already has a row without error in the results table, or, for
marking, when its output exists (unless ``overwrite``). A failed image is tried again by the next run.
The same code runs on a cluster: pass ``address`` (or start the job with ``ray job submit``); the inputs,
outputs and results folder must then be on storage that every node sees.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from robusthide import RobustHideError

COLUMNS = ("path", "output", "message", "detected", "p_value", "error")
RESULT_FORMATS = ("parquet", "csv")


# -- inputs and results (driver side, no Ray) ------------------------------------------------------------

def read_sources(source: str | Path | list[str], exclude: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """``[{"path": ..., "message": ... or None}]`` from a folder (leaving out the ``exclude`` folders, e.g. an
    output folder inside it), a file list, a Parquet table of paths or a Python list of paths."""
    if isinstance(source, (list, tuple)):
        rows = [{"path": str(s), "message": None} for s in source]
    elif (src := Path(source)).is_dir():
        from robusthide.io.safe import list_images

        rows = [{"path": str(p), "message": None} for p in list_images(src, exclude=exclude)]
    elif src.suffix.lower() == ".parquet":
        rows = _parquet_sources(src)
    else:
        try:
            lines = src.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise RobustHideError(f"{src}: cannot read the file list ({type(e).__name__})") from None
        rows = [{"path": s, "message": None} for s in (ln.strip() for ln in lines) if s and not s.startswith("#")]
    if not rows:
        raise RobustHideError(f"{source if isinstance(source, (str, Path)) else 'the list'}: no images to process")
    for r in rows:  # absolute: every worker (and every node of a cluster) reads the same file
        r["path"] = str(Path(r["path"]).absolute())
    return rows


def _parquet_sources(src: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(src)
    except Exception as e:  # pyarrow raises its own types for missing or malformed files
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{src}: not a readable Parquet table ({first})") from None
    if "path" not in table.column_names:
        raise RobustHideError(f"{src}: the Parquet table has no 'path' column (columns: {table.column_names})")
    paths = [str(p) for p in table.column("path").to_pylist()]
    msgs = table.column("message").to_pylist() if "message" in table.column_names else [None] * len(paths)
    return [{"path": p, "message": m} for p, m in zip(paths, msgs)]


def _result_files(results: Path) -> list[Path]:
    if not results.exists():
        return []
    if not results.is_dir():
        raise RobustHideError(f"{results}: the results table is a folder (of Parquet or CSV files), not a file")
    return sorted(p for p in results.iterdir() if p.suffix in (".parquet", ".csv") and not p.name.startswith("."))


def read_results(results: str | Path) -> list[dict[str, Any]]:
    """Every row of a results folder (all runs), one per path: a row without error when there is one, else
    the last error row read."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    text = pcsv.ConvertOptions(column_types={c: pa.string() for c in ("path", "output", "message", "error")},
                               strings_can_be_null=True)  # an empty CSV cell is a missing value
    best: dict[str, dict[str, Any]] = {}
    for f in _result_files(Path(results)):
        table = pq.read_table(f) if f.suffix == ".parquet" else pcsv.read_csv(f, convert_options=text)
        for row in table.to_pylist():
            row = {c: row.get(c) for c in COLUMNS}
            old = best.get(row["path"])
            if old is None or old["error"] or not row["error"]:
                best[row["path"]] = row if old is None or old["error"] else old
    return list(best.values())


def _done(results: Path) -> set[str]:
    return {r["path"] for r in read_results(results) if not r["error"]}


# -- the work of one actor ------------------------------------------------------------------------------

def _one_line(e: Exception, path: str) -> str:
    """The results table's ``error`` of a file: a RobustHideError's message as is; anything else (an OS
    error, an unexpected failure) as ``path: Type: first line``."""
    if isinstance(e, RobustHideError):
        return str(e)
    text = (getattr(e, "strerror", None) or str(e)).splitlines()
    return f"{path}: {type(e).__name__}" + (f": {text[0]}" if text else "")


class _Worker:
    """A Ray Data actor: one Watermarker, batches of tasks in, result rows out (errors become rows)."""

    def __init__(self, mode: str, model: str, message: Any, kind: str | None, strength: float,
                 refine: int | None, fmt: str | None, quality: int, threads: int):
        import torch

        from robusthide.watermark.watermarker import Watermarker

        torch.set_num_threads(max(1, threads))
        self.wm = Watermarker.from_pretrained(model)
        self.mode, self.message, self.kind = mode, message, kind
        self.strength, self.refine, self.fmt, self.quality = strength, refine, fmt, quality

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from robusthide.watermark.files import read_image_file

        n = len(batch["path"])
        rows = [{"path": str(batch["path"][i]), "output": None, "message": None, "detected": None,
                 "p_value": None, "error": None} for i in range(n)]
        files: dict[int, Any] = {}
        for i, r in enumerate(rows):
            try:
                files[i] = read_image_file(r["path"])
            except Exception as e:  # one bad file must not stop a job of millions: its row says why
                r["error"] = _one_line(e, r["path"])
        if self.mode == "embed":
            self._embed(batch, rows, files)
        else:
            self._extract(rows, files)
        return {c: [r[c] for r in rows] for c in COLUMNS}

    def _each(self, fn, idx: list[int], *args) -> list[Any]:
        """``fn(list of items)`` over the batch; when it raises, item by item, the errors kept per item."""
        try:
            return fn(*[[a[i] for i in idx] for a in args])
        except Exception:  # find the image(s) that failed, one at a time
            out = []
            for i in idx:
                try:
                    out.append(fn(*[[a[i]] for a in args])[0])
                except Exception as e:
                    out.append(e)
            return out

    def _embed(self, batch: dict[str, Any], rows: list[dict], files: dict[int, Any]) -> None:
        from robusthide.watermark.files import encode_image, output_format, read_image_file, write_bytes_atomic

        idx = sorted(files)
        given = {i: json.loads(str(batch["message"][i])) for i in idx}
        msgs = {i: self.message if given[i] is None else given[i] for i in idx}
        arrays = {i: files[i].array for i in idx}
        marked = self._each(lambda a, m: self.wm.embed_batch(a, m, self.strength, self.kind, refine=self.refine),
                            idx, arrays, msgs)
        for i, m in zip(idx, marked):
            r = rows[i]
            r["message"] = str(msgs[i])
            if isinstance(m, Exception):
                r["error"] = _one_line(m, r["path"])
                continue
            try:
                out = str(batch["output"][i])
                data = encode_image(m, output_format(out, self.fmt), self.quality, files[i].icc, files[i].exif)
                write_bytes_atomic(out, data, protect=[Path(r["path"])])
                res = self.wm.extract(read_image_file(out).array)  # the file as saved (JPEG included)
                r.update(output=out, detected=bool(res.detected), p_value=float(res.p_value))
            except Exception as e:
                r["error"] = _one_line(e, str(batch["output"][i]))

    def _extract(self, rows: list[dict], files: dict[int, Any]) -> None:
        idx = sorted(files)
        found = self._each(self.wm.extract_batch, idx, {i: files[i].array for i in idx})
        for i, res in zip(idx, found):
            if isinstance(res, Exception):
                rows[i]["error"] = _one_line(res, rows[i]["path"])
            else:
                msg = res.message.hex() if isinstance(res.message, bytes) else res.message
                rows[i].update(message=None if msg is None else str(msg), detected=bool(res.detected),
                               p_value=float(res.p_value))


# -- the driver ---------------------------------------------------------------------------------------------

def _ray(address: str | None, progress: bool = False):
    try:
        import ray
        import ray.data
    except ImportError:
        raise RobustHideError("Ray is not installed: pip install 'robusthide[scale]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level="warning", configure_logging=True)
    import logging

    # per-dataset lines (and the note that progress bars are off): the summary says it all
    logging.getLogger("ray.data").setLevel(logging.INFO if progress else logging.ERROR)
    return ray


def _outputs(tasks: list[dict[str, Any]], out_dir: Path, fmt: str | None) -> None:
    """Each task's output: under ``out_dir``, at its path relative to the inputs' common folder."""
    absolute = [Path(t["path"]).absolute() for t in tasks]
    root = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    for t, p in zip(tasks, absolute):
        dst = out_dir / p.relative_to(root)
        if fmt:
            dst = dst.with_suffix("." + fmt.lower().replace("jpeg", "jpg"))
        t["output"] = str(dst)


def run_job(mode: str, source: str | Path | list[str], results: str | Path, *, out_dir: str | Path | None = None,
            message: Any = None, model: str = "default", workers: int = 2, batch_size: int = 8,
            threads_per_worker: int = 1, kind: str | None = None, strength: float = 1.0,
            refine: int | None = None, fmt: str | None = None, quality: int = 95, overwrite: bool = False,
            results_format: str = "parquet", address: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Mark (``mode='embed'``, outputs under ``out_dir``) or verify (``mode='extract'``) the images of
    ``source`` with Ray Data; add the rows to the ``results`` folder. Returns a summary: tasks found, skipped
    (already done), processed, errors, detected, seconds. Uses the running Ray, else starts one
    (``address``: a cluster's, e.g. ``ray://head:10001`` or ``auto``; None: a local Ray on this machine)."""
    if mode not in ("embed", "extract"):
        raise RobustHideError(f"mode must be embed or extract, got {mode!r}")
    if results_format not in RESULT_FORMATS:
        raise RobustHideError(f"results format must be one of {RESULT_FORMATS}, got {results_format!r}")
    if workers < 1 or batch_size < 1 or threads_per_worker < 1:
        raise RobustHideError("workers, batch size and threads per worker must be at least 1")
    res_dir = Path(results)
    tasks = read_sources(source, exclude=(Path(out_dir),) if out_dir is not None else ())
    if mode == "embed":
        if out_dir is None:
            raise RobustHideError("marking needs an output folder")
        if message is None and any(t["message"] is None for t in tasks):
            raise RobustHideError("give the message (or a 'message' column in the Parquet table)")
        _outputs(tasks, Path(out_dir), fmt)
    else:
        for t in tasks:
            t["output"] = None
    done = _done(res_dir)
    todo = [t for t in tasks if t["path"] not in done
            and (mode == "extract" or overwrite or not Path(t["output"]).exists())]
    summary: dict[str, Any] = {"mode": mode, "tasks": len(tasks), "skipped": len(tasks) - len(todo),
                               "processed": len(todo), "errors": 0, "detected": 0, "seconds": 0.0,
                               "workers": workers, "results": str(res_dir)}
    if not todo:
        return summary
    t0 = time.perf_counter()
    ray = _ray(address, progress)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.print_on_execution_start = progress
    # messages travel as JSON (an int stays an int, text stays text): one column type whatever they are
    items = [{"path": t["path"], "output": t["output"] or "", "message": json.dumps(t["message"])} for t in todo]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), workers * 4)))
    ds = ds.map_batches(_Worker, batch_size=batch_size, batch_format="numpy",
                        concurrency=workers, num_cpus=threads_per_worker,
                        fn_constructor_kwargs={"mode": mode, "model": model, "message": message, "kind": kind,
                                               "strength": strength, "refine": refine, "fmt": fmt,
                                               "quality": quality, "threads": threads_per_worker})
    ds = ds.materialize()
    res_dir.mkdir(parents=True, exist_ok=True)
    (ds.write_parquet if results_format == "parquet" else ds.write_csv)(str(res_dir.absolute()))
    stats = ds.select_columns(["error", "detected"]).take_all()
    summary["errors"] = sum(1 for s in stats if s["error"])
    summary["detected"] = sum(1 for s in stats if s["detected"])
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary
