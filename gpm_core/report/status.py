"""The reproduction-status page: every table and figure of both papers, with what
`results/` and the book hold for it. Generated, never typed: the book's status chapter
and `python -m gpm_core status` both call `status_rows`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..artifacts import REPO, load_analyses, load_results
from . import RESULTS
from .paper_numbers import DKM, GPM, ITEMS

SHORT = {GPM: "GPM", DKM: "DKM"}  # the paper column of the table: the intro names both papers


def _runs_by_experiment(results_dir: Path, skipped: list | None = None) -> dict[str, dict[str, int]]:
    """experiment -> profile -> number of finished runs (result JSONs) and analyses of
    trained models (analysis JSONs) in results_dir; unreadable files go to `skipped`."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in (load_results(results_dir=results_dir, skipped=skipped)
              + load_analyses(results_dir=results_dir, skipped=skipped)):
        counts[r["experiment"]][r.get("profile", "?")] += 1
    return counts


def status_rows(results_dir: str | Path | None = None, book_dir: str | Path | None = None,
                skipped: list | None = None) -> list[dict]:
    """One row per item of `paper_numbers.ITEMS`: paper, item, runs found, chapter, status.

    status is "reproduced (paper profile)" when every experiment of the item has runs with
    the paper's hyper-parameters and a chapter renders them; "CPU profiles only" when the
    chapter renders only CPU runs (shorter than the paper's training);
    "derived" for a mathematical statement checked in a chapter; "illustration (nothing to
    measure)" for a diagram; "partial" when some runs or the chapter exist; "open" otherwise.
    JSON files that cannot be read are not counted; they are appended to `skipped` as
    (path, reason) when a list is given.
    """
    results_dir = Path(results_dir) if results_dir is not None else RESULTS
    book_dir = Path(book_dir) if book_dir is not None else REPO / "book"
    runs = _runs_by_experiment(results_dir, skipped) if results_dir.exists() else {}
    rows = []
    for item in ITEMS:
        has_chapter = bool(item.chapter) and (book_dir / f"{item.chapter}.ipynb").exists()
        found = {e: dict(runs.get(e, {})) for e in item.experiments}
        n_with_runs = sum(1 for e in item.experiments if found[e])
        n_paper = sum(1 for e in item.experiments if found[e].get("paper"))
        if item.kind == "illustration":
            status = "illustration (nothing to measure)"
        elif not item.experiments:
            status = "derived" if has_chapter else "open"
        elif n_paper == len(item.experiments) and has_chapter:
            status = "reproduced (paper profile)"
        elif n_with_runs == len(item.experiments) and has_chapter:
            status = "CPU profiles only"
        elif n_with_runs or has_chapter:
            status = "partial"
        else:
            status = "open"
        runs_text = "; ".join(
            f"{e}: " + (", ".join(f"{n} {p}" for p, n in sorted(found[e].items())) or "none")
            for e in item.experiments
        )
        rows.append({
            "paper": item.paper,
            "item": item.what,
            "runs": runs_text or "-",
            "chapter": item.chapter if has_chapter else "-",
            "issue": item.issue,
            "status": status,
        })
    return rows


def status_markdown(results_dir: str | Path | None = None, book_dir: str | Path | None = None) -> str:
    """The status table as Markdown (the book displays it; the CLI prints it), then one
    line per result file that could not be read (not counted)."""
    skipped: list = []
    rows = status_rows(results_dir, book_dir, skipped)
    head = "| paper | table / figure | status | runs in results/ (per profile) | chapter | issue |\n"
    head += "|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {SHORT.get(r['paper'], r['paper'])} | {r['item']} | **{r['status']}** | {r['runs']} | {r['chapter']} | "
        f"{r['issue'] or '-'} |\n"
        for r in rows
    )
    notes = "".join(f"\nskipped {path}: {why}; restore it (git checkout) or delete it\n" for path, why in skipped)
    return head + body + notes
