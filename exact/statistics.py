"""Statistics of leaderboards and comparisons, computed on the server from the stored per-sample values.

Two layers. First pure functions on arrays (SciPy does the statistics): a bootstrap confidence interval of a mean,
a paired comparison (mean difference with its interval, win rate, Wilcoxon signed-rank test), Holm's correction,
rank groups of statistically tied neighbours, the critical difference of average ranks (Friedman, Nemenyi) and
the normalised scale (random baseline = 0, ground truth = 1). Then the services: they read the per-sample values
of a bounded set of submissions (one leaderboard page and its baselines, or the two sides of a comparison), apply
exact.permissions (which parts may feed an aggregate, who sees per-sample pairs, which result pages to link) and
return only figures passed through ``rounded``. Choices, numbers and bounds: docs/statistics.md.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from db import challenges as challenges_sql
from db import evaluations as evaluations_sql
from db.database import Database
from exact import metrics, splits
from exact.accounts import User, load_active_user
from exact.competition import rules_in
from exact.errors import NotFound, ValidationError
from exact.evaluation_sets import BASELINES, PAPER_BASELINES
from exact.permissions import (
    MIN_STATISTIC_SAMPLES,
    ComparisonAccess,
    board_statistics_allowed,
    comparison_access,
    may_open_result,
    rounded,
)

CONFIDENCE = 0.95  # of every interval
ALPHA = 0.05  # significance level of the rank groups and the critical difference
BOOTSTRAP_RESAMPLES = 1000  # per interval; SciPy's default is 9999 (docs/statistics.md: why fewer)
BOOTSTRAP_BATCH = 250  # resamples evaluated at once: memory stays at 250 x n floats
BCA_MAX_SAMPLES = 1000  # above this, the percentile interval (BCa's jackknife costs n^2; both agree for large n)
STATISTICS_ROWS = 50  # leaderboard rows (of the shown page) that get intervals and tests: one page
CD_METHODS = 20  # methods in the critical-difference view: the page's first rows (plus the baselines)
COMPARE_CANDIDATES = 150  # leaderboard rows offered for a comparison (any other row can be deep-linked)
CACHE_ENTRIES = 4096  # computed intervals and comparisons kept per process (a few hundred bytes each)

SCORE_ONLY_NOTE = (
    "Scores of this challenge are submitted as numbers, so the server holds no per-sample values: there are no "
    "confidence intervals, paired tests or tied ranks to show."
)
GROUP_HELP = (
    f"Statistically tied ranks: neighbours whose paired Wilcoxon signed-rank test on the same samples is not "
    f"significant after Holm's correction (α = {ALPHA:g}) share a group. Computed within the shown page."
)
BASELINE_DESCRIPTIONS: dict[str, str] = {
    BASELINES["random"]: "Random noise drawn with a secret seed (standard normal; uniform on [−1, 1] under the "
    "XAI-TRIS paper protocol): where an uninformative method lands.",
    BASELINES["sobel"]: "The gradient magnitude of the input (Sobel filter): highlights the edges of the image.",
    BASELINES["laplace"]: "The absolute Laplacian of the input: another edge detector, sharper than Sobel.",
    BASELINES["input"]: "The input image itself used as its own attribution.",
    BASELINES["ground_truth"]: "The true masks: the ceiling no method can pass.",
    PAPER_BASELINES["sobel"]: "The Sobel filter of the input along one axis, signed, as XAI-TRIS computes it.",
    PAPER_BASELINES["laplace"]: "The Laplacian of the input, signed, as XAI-TRIS computes it.",
}


def baseline_description(method_name: str) -> str:
    """What a reference row is; model-based ones are named "<method> · <model>" (exact.trained_models)."""
    if method_name in BASELINE_DESCRIPTIONS:
        return BASELINE_DESCRIPTIONS[method_name]
    method, separator, model = method_name.partition(" · ")
    if separator:
        return f"{method} attributions of the model to explain ({model}), computed on the server with Captum."
    return ""
RANDOM_BASELINE = BASELINES["random"]
CEILING_BASELINE = BASELINES["ground_truth"]


# --- pure statistics ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanInterval:
    """Mean of n values and its bootstrap confidence interval (low, high)."""

    mean: float
    low: float
    high: float
    n: int


def _finite(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    array = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    return array[np.isfinite(array)]


def bootstrap_mean_interval(
    values: Sequence[float | None] | np.ndarray,
    *,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> MeanInterval | None:
    """The mean with SciPy's BCa bootstrap interval over the finite values (None for fewer than two); over more
    than BCA_MAX_SAMPLES values SciPy's percentile interval.

    Deterministic for a seed. Constant values get the zero-width interval (BCa is undefined there); should BCa
    still fail (a degenerate jackknife), the percentile interval is used."""
    data = _finite(values)
    if data.size < 2:
        return None
    mean = float(data.mean())
    if float(data.max()) == float(data.min()):
        return MeanInterval(mean, mean, mean, int(data.size))
    # BCa's acceleration divides by the spread of the jackknife means, which underflows for values that differ
    # only far below any shown decimal: those get the percentile interval straight away.
    tiny = float(data.max()) - float(data.min()) <= 1e-9 * max(1.0, abs(mean))
    for method in ("percentile",) if tiny or data.size > BCA_MAX_SAMPLES else ("BCa", "percentile"):
        result = stats.bootstrap(
            (data,),
            np.mean,
            n_resamples=resamples,
            batch=BOOTSTRAP_BATCH,
            vectorized=True,
            confidence_level=confidence,
            method=method,
            rng=np.random.default_rng(seed),
        )
        low, high = (float(v) for v in result.confidence_interval)
        if math.isfinite(low) and math.isfinite(high):
            return MeanInterval(mean, min(low, high), max(low, high), int(data.size))
    return MeanInterval(mean, math.nan, math.nan, int(data.size))  # pragma: no cover - both methods failed


@dataclass(frozen=True)
class PairedComparison:
    """Method A against method B on the samples both were scored on (``n``)."""

    n: int
    mean_a: float
    mean_b: float
    difference: float  # mean of a - b
    low: float  # bootstrap interval of the mean difference
    high: float
    wins: int  # samples where A is better (in the metric's direction)
    losses: int
    ties: int
    win_rate: float  # (wins + ties / 2) / n
    p_value: float  # two-sided Wilcoxon signed-rank test of the differences


def wilcoxon_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of SciPy's Wilcoxon signed-rank test (zero differences dropped, its default); 1.0 when
    every difference is zero (no evidence either way)."""
    d = np.asarray(differences, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_comparison(
    a: Sequence[float | None] | np.ndarray,
    b: Sequence[float | None] | np.ndarray,
    *,
    higher_is_better: bool = True,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> PairedComparison | None:
    """Paired statistics of two aligned per-sample arrays (NaN/None = not scored); None below two pairs."""
    x = np.asarray([math.nan if v is None else v for v in a], dtype=np.float64)
    y = np.asarray([math.nan if v is None else v for v in b], dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("paired values must be aligned per sample")
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    n = int(x.size)
    if n < 2:
        return None
    d = x - y
    better = d > 0 if higher_is_better else d < 0
    worse = d < 0 if higher_is_better else d > 0
    wins, losses = int(better.sum()), int(worse.sum())
    ties = n - wins - losses
    interval = bootstrap_mean_interval(d, seed=seed, resamples=resamples, confidence=confidence)
    assert interval is not None  # n >= 2
    return PairedComparison(
        n=n,
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        difference=float(d.mean()),
        low=interval.low,
        high=interval.high,
        wins=wins,
        losses=losses,
        ties=ties,
        win_rate=(wins + ties / 2) / n,
        p_value=wilcoxon_p(d),
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family: the values that are not None, which stay None).

    Sorted ascending, the i-th (0-based) of m becomes max over j <= i of min(1, (m - j) p_(j))."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for j, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - j) * float(p)))
        adjusted[i] = running
    return adjusted


def rank_groups(
    ranks: Sequence[int], adjusted_next: Sequence[float | None], *, alpha: float = ALPHA
) -> list[tuple[int, int]]:
    """(first, last) rank of each row's group: rows in ranking order, ``adjusted_next[i]`` the adjusted p-value
    of row i against row i + 1. Neighbours join when that p-value is at least ``alpha`` (not significantly
    different); None (not testable) separates them. Groups are runs of joined neighbours."""
    n = len(ranks)
    if len(adjusted_next) != max(n - 1, 0):
        raise ValueError("one p-value per pair of neighbours")
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(n):
        last = i == n - 1
        if last or adjusted_next[i] is None or adjusted_next[i] < alpha:
            groups.extend([(int(ranks[start]), int(ranks[i]))] * (i - start + 1))
            start = i + 1
    return groups


def group_label(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


@dataclass(frozen=True)
class CriticalDifference:
    """Average ranks of k methods over N blocks (metrics) with the Nemenyi critical difference (Demšar 2006)."""

    methods: tuple[str, ...]  # in the order given
    average_ranks: tuple[float, ...]
    ranks: tuple[tuple[float, ...], ...]  # per method, its rank in each block (1 = best)
    blocks: tuple[str, ...]
    cd: float
    friedman_statistic: float | None  # None for two methods (Friedman needs three) or all ties
    friedman_p: float | None
    cliques: tuple[tuple[int, ...], ...]  # maximal sets of methods (indices) closer than cd in average rank


def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """The critical value q_alpha of the Nemenyi test for k methods: the studentized range quantile / sqrt(2)."""
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def critical_difference(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    *,
    methods: Sequence[str],
    blocks: Sequence[str],
    higher_is_better: Sequence[bool],
    alpha: float = ALPHA,
) -> CriticalDifference | None:
    """``matrix[i][j]``: method i's figure on block j. Methods with a missing figure are left out; None when fewer
    than two methods or two blocks remain."""
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.shape != (len(methods), len(blocks)) or len(higher_is_better) != len(blocks):
        raise ValueError("one row per method and one column per block")
    keep = np.isfinite(values).all(axis=1)
    values = values[keep]
    kept = [m for m, k in zip(methods, keep, strict=True) if k]
    k, n = values.shape
    if k < 2 or n < 2:
        return None
    signs = np.where(np.asarray(higher_is_better, dtype=bool), -1.0, 1.0)
    ranks = np.column_stack([stats.rankdata(signs[j] * values[:, j]) for j in range(n)])  # 1 = best, ties averaged
    average = ranks.mean(axis=1)
    cd = nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))
    statistic = p_value = None
    if k >= 3 and not np.all(ranks == ranks[:1, :]):  # not every method tied within every block
        result = stats.friedmanchisquare(*(values * signs))
        if math.isfinite(result.statistic):
            statistic, p_value = float(result.statistic), float(result.pvalue)
    return CriticalDifference(
        methods=tuple(kept),
        average_ranks=tuple(float(r) for r in average),
        ranks=tuple(tuple(float(r) for r in row) for row in ranks),
        blocks=tuple(blocks),
        cd=float(cd),
        friedman_statistic=statistic,
        friedman_p=p_value,
        cliques=_cliques(average, cd),
    )


def _cliques(average: np.ndarray, cd: float) -> tuple[tuple[int, ...], ...]:
    """Maximal runs (in average-rank order) of at least two methods whose average ranks differ by less than cd."""
    order = [int(i) for i in np.argsort(average, kind="stable")]
    found: list[tuple[int, ...]] = []
    last_end = -1
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and average[order[end + 1]] - average[order[start]] < cd:
            end += 1
        if end > start and end > last_end:
            found.append(tuple(order[start : end + 1]))
            last_end = end
    return tuple(found)


def normalised(value: float | None, random: float | None, ceiling: float | None) -> float | None:
    """(value - random) / (ceiling - random): the random baseline at 0, the ground truth at 1."""
    if value is None or random is None or ceiling is None:
        return None
    if not all(math.isfinite(v) for v in (value, random, ceiling)) or ceiling == random:
        return None
    return (value - random) / (ceiling - random)


def seed_for(*parts: int) -> int:
    """A fixed seed per computed figure, so a page shows the same interval on every view and in every process."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


# --- the cache --------------------------------------------------------------------------------------------------


class _Cache:
    """A bounded LRU of computed figures. Keys hold the database, the challenge, the submission ids and their
    scoring times: a scored submission's per-sample values never change, so an entry is never stale."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key not in self._data:
                return False, None
            self._data.move_to_end(key)
            return True, self._data[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_cache = _Cache(CACHE_ENTRIES)


def clear_cache() -> None:
    _cache.clear()


# --- per-sample values ------------------------------------------------------------------------------------------


def _split_array(entry: dict[str, Any], metric: str, split: str) -> np.ndarray | None:
    """The metric's per-sample values with NaN outside the split (and where not scorable), aligned by sample."""
    values = (entry.get("metrics") or {}).get(metric)
    if values is None:
        return None
    array = np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    codes = entry.get("split_codes")
    codes = np.ones(array.size, dtype=np.int8) if codes is None else np.asarray(codes, dtype=np.int8)
    if codes.size != array.size:
        return None
    return np.where(codes == splits.SPLIT_CODES[split], array, math.nan)


def _split_codes(entry: dict[str, Any], n: int) -> np.ndarray:
    codes = entry.get("split_codes")
    return np.ones(n, dtype=np.int8) if codes is None else np.asarray(codes, dtype=np.int8)


def _stamp(card: dict[str, Any]) -> str:
    finished = card.get("finished_at")
    return finished.isoformat() if isinstance(finished, datetime) else str(finished)


def _metric_index(metric: str) -> int:
    return list(metrics.METRICS).index(metric) if metric in metrics.METRICS else 99


def _interval_key(db: Database, challenge_id: str, card: dict[str, Any], split: str, metric: str) -> tuple:
    return ("interval", db.url, challenge_id, card["id"], _stamp(card), split, metric, BOOTSTRAP_RESAMPLES)


def _pair_key(db: Database, challenge_id: str, a: dict[str, Any], b: dict[str, Any], split: str, metric: str) -> tuple:
    return ("pair", db.url, challenge_id, a["id"], _stamp(a), b["id"], _stamp(b), split, metric, BOOTSTRAP_RESAMPLES)


def _interval_of(
    db: Database, challenge_id: str, card: dict[str, Any], split: str, metric: str, entry: dict[str, Any] | None
) -> MeanInterval | None:
    """The cached interval, else computed from ``entry`` (the submission's values as read; None: not read, so
    nothing is computed or cached, e.g. when the entry left the cache between the check and now)."""
    key = _interval_key(db, challenge_id, card, split, metric)
    hit, cached = _cache.get(key)
    if hit or entry is None:
        return cached
    values = _split_array(entry, metric, split)
    result = None
    if values is not None and int(np.isfinite(values).sum()) >= MIN_STATISTIC_SAMPLES:
        seed = seed_for(card["id"], splits.SPLIT_CODES[split], _metric_index(metric))
        result = bootstrap_mean_interval(values, seed=seed)
    _cache.put(key, result)
    return result


def _pair_of(
    db: Database,
    challenge_id: str,
    card_a: dict[str, Any],
    card_b: dict[str, Any],
    split: str,
    metric: str,
    entries: dict[int, dict[str, Any] | None],
) -> PairedComparison | None:
    """The cached comparison, else computed from the two sides' values as read (see _interval_of)."""
    key = _pair_key(db, challenge_id, card_a, card_b, split, metric)
    hit, cached = _cache.get(key)
    entry_a, entry_b = entries.get(card_a["id"]), entries.get(card_b["id"])
    if hit or entry_a is None or entry_b is None:
        return cached
    a, b = _split_array(entry_a, metric, split), _split_array(entry_b, metric, split)
    result = None
    if a is not None and b is not None and a.shape == b.shape:
        paired = int((np.isfinite(a) & np.isfinite(b)).sum())
        if paired >= MIN_STATISTIC_SAMPLES:
            seed = seed_for(card_a["id"], card_b["id"], splits.SPLIT_CODES[split], _metric_index(metric), 1)
            result = paired_comparison(a, b, higher_is_better=metrics.METRICS[metric].higher_is_better, seed=seed)
    _cache.put(key, result)
    return result


def _uncached(
    db: Database, challenge_id: str, cards: list[dict], pairs: list[tuple[dict, dict]], split: str, metric: str
) -> set[int]:
    """Ids whose interval, or a comparison they are part of, is not cached yet: their values must be read."""
    ids = {c["id"] for c in cards if not _cache.get(_interval_key(db, challenge_id, c, split, metric))[0]}
    for a, b in pairs:
        if not _cache.get(_pair_key(db, challenge_id, a, b, split, metric))[0]:
            ids |= {a["id"], b["id"]}
    return ids


def _read(values: dict[int, dict[str, Any]], requested: set[int]) -> dict[int, dict[str, Any] | None]:
    """Per requested id its values as read ({} when it has none stored); ids not requested are absent (None)."""
    return {i: values.get(i, {}) for i in requested}


# --- method cards -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodCard:
    """A method's public card: the submitter's own text (or the baseline's description) and who submitted it."""

    submission_id: int
    is_baseline: bool
    method: str
    description: str
    url: str
    username: str | None  # None for a baseline
    created_at: datetime | None
    result_id: int | None  # the submission id when the viewer may open its result page, else None
    rank: int | None = None  # its rank on the shown board (None for baselines and rows not shown)


def _card(row: dict[str, Any], viewer: User | None, owner_id: int | None, rank: int | None = None) -> MethodCard:
    baseline = row["kind"] == "baseline"
    may_open = may_open_result(viewer, owner_id=owner_id, submitter_id=row["user_id"], is_baseline=baseline)
    return MethodCard(
        submission_id=row["id"],
        is_baseline=baseline,
        method=row["method_name"],
        description=baseline_description(row["method_name"]) if baseline else (row["description"] or ""),
        url="" if baseline else (row["url"] or ""),
        username=None if baseline else row["username"],
        created_at=row["created_at"],
        result_id=row["id"] if may_open else None,
        rank=rank,
    )


# --- the leaderboard's statistics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardStatistics:
    """What a leaderboard page shows beyond the ranking: per row its interval, tied-rank group and the p-value
    against the next row, the normalised figures, the link to the result page where the viewer may open it, the
    method cards, and the critical difference over the shown metrics. Every figure rounded."""

    table: pd.DataFrame  # the board's page + group, p_next, ci_low, ci_high, n, result_id, norm_* columns
    baselines: pd.DataFrame | None  # the board's baselines + ci_low, ci_high, n, result_id, norm_* columns
    cards: dict[int, MethodCard] = field(default_factory=dict)  # page rows, then baselines
    available: bool = False  # per-sample statistics were computed (a ground-truth challenge's board)
    note: str | None = None
    split: str = "public"
    metric: str | None = None
    normalisable: bool = False  # both the random baseline and the ground truth are scored
    critical_difference: CriticalDifference | None = None
    resamples: int = BOOTSTRAP_RESAMPLES
    confidence: float = CONFIDENCE
    alpha: float = ALPHA
    rows_with_statistics: int = 0


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Missing figures as NaN in float columns (shown empty), never as the text 'None'."""
    frame = frame.copy()
    for column in columns:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def _figure_columns(board) -> list[str]:
    return ["score", "vs_random", *board.shown_metrics]


def board_statistics(db: Database, actor_id: int | None, board) -> BoardStatistics:
    """Statistics of one leaderboard page (``board``: an exact.scores.Leaderboard) as this viewer may see them.

    Bounded: the first STATISTICS_ROWS rows of the page and the baselines, one metric (the primary), each figure
    computed once per process (cached by submission ids). Score-only challenges get their table back with a note.
    """
    table = _numeric(board.table, _figure_columns(board))
    if board.primary_metric is None or "submission_id" not in table.columns:
        return BoardStatistics(table=table, baselines=None, note=SCORE_ONLY_NOTE)
    baselines = _numeric(board.baselines, _figure_columns(board)) if board.baselines is not None else None
    challenge_id, metric, split = board.challenge_id, board.primary_metric, board.board
    page = table.head(STATISTICS_ROWS)
    page_ids = [int(i) for i in page["submission_id"]]
    baseline_ids = [int(i) for i in baselines["submission_id"]] if baselines is not None else []
    allowed = board_statistics_allowed(split, private_revealed=board.final_available)
    with db.connect() as conn:
        viewer = load_active_user(conn, actor_id)
        owner_id = challenges_sql.get_owner(conn, challenge_id)
        rows = {r["id"]: r for r in evaluations_sql.method_cards(conn, challenge_id, page_ids + baseline_ids)}
        page_cards = [rows[i] for i in page_ids if i in rows]
        baseline_cards = [rows[i] for i in baseline_ids if i in rows and rows[i]["status"] == "done"]
        neighbours = list(zip(page_cards, page_cards[1:], strict=False))
        wanted: set[int] = set()
        values: dict[int, dict[str, Any]] = {}
        if allowed:  # read only what the cache does not hold yet
            wanted = _uncached(db, challenge_id, page_cards + baseline_cards, neighbours, split, metric)
            if wanted:
                values = evaluations_sql.per_sample_values(conn, challenge_id, sorted(wanted), [metric])
    entries = _read(values, wanted)
    ranks = dict(zip(page_ids, (int(r) for r in page["rank"]), strict=True))
    cards = {i: _card(rows[i], viewer, owner_id, ranks.get(i)) for i in page_ids + baseline_ids if i in rows}

    intervals: dict[int, MeanInterval | None] = {}
    raw_p: list[float | None] = [None] * len(neighbours)
    if allowed:
        for card in page_cards + baseline_cards:
            intervals[card["id"]] = _interval_of(db, challenge_id, card, split, metric, entries.get(card["id"]))
        for k, (a, b) in enumerate(neighbours):
            pair = _pair_of(db, challenge_id, a, b, split, metric, entries)
            raw_p[k] = None if pair is None else pair.p_value
    adjusted = holm(raw_p)
    # Rows whose card is missing (cannot happen for a consistent board) simply get no statistics.
    stat_ids = [c["id"] for c in page_cards]
    groups = rank_groups([ranks[i] for i in stat_ids], adjusted) if stat_ids else []
    group_of = {i: group_label(*g) for i, g in zip(stat_ids, groups, strict=True)}
    p_next = {i: rounded(p) for i, p in zip(stat_ids, adjusted, strict=False)}

    random_row, ceiling_row = _reference_rows(baselines)
    normalisable = random_row is not None and ceiling_row is not None
    table = _decorate(table, board, intervals, cards, random_row, ceiling_row)
    table["group"] = [group_of.get(int(i)) for i in table["submission_id"]]
    table["p_next"] = pd.Series([p_next.get(int(i)) for i in table["submission_id"]], dtype="float64")
    if baselines is not None:
        baselines = _decorate(baselines, board, intervals, cards, random_row, ceiling_row)
    return BoardStatistics(
        table=table,
        baselines=baselines,
        cards={i: cards[i] for i in page_ids + baseline_ids if i in cards},
        available=allowed,
        note=None if allowed else "Statistics of this board are not available.",
        split=split,
        metric=metric,
        normalisable=normalisable,
        critical_difference=_board_critical_difference(table, baselines, board),
        rows_with_statistics=len(stat_ids),
    )


def _reference_rows(baselines: pd.DataFrame | None) -> tuple[dict | None, dict | None]:
    if baselines is None or baselines.empty:
        return None, None
    done = baselines[baselines["status"] == "done"]
    by_method = {r["method"]: r for r in done.to_dict("records")}
    return by_method.get(RANDOM_BASELINE), by_method.get(CEILING_BASELINE)


def _decorate(
    frame: pd.DataFrame,
    board,
    intervals: dict[int, MeanInterval | None],
    cards: dict[int, MethodCard],
    random_row: dict | None,
    ceiling_row: dict | None,
) -> pd.DataFrame:
    frame = frame.copy()
    ids = [int(i) for i in frame["submission_id"]]

    def interval(i: int, side: str) -> float | None:
        found = intervals.get(i)
        return None if found is None else rounded(getattr(found, side))

    frame["ci_low"] = pd.Series([interval(i, "low") for i in ids], dtype="float64", index=frame.index)
    frame["ci_high"] = pd.Series([interval(i, "high") for i in ids], dtype="float64", index=frame.index)
    frame["n"] = pd.Series([None if intervals.get(i) is None else intervals[i].n for i in ids], dtype="Int64",
                           index=frame.index)  # fmt: skip
    frame["result_id"] = pd.Series([cards[i].result_id if i in cards else None for i in ids], dtype="Int64",
                                   index=frame.index)  # fmt: skip

    def scale(value: Any, column: str) -> float | None:
        if random_row is None or ceiling_row is None or value is None or pd.isna(value):
            return None
        return rounded(normalised(float(value), _float(random_row.get(column)), _float(ceiling_row.get(column))))

    for column in ("score", *board.shown_metrics):
        frame[f"norm_{column}"] = pd.Series([scale(v, column) for v in frame[column]], dtype="float64",
                                            index=frame.index)  # fmt: skip
    frame["norm_ci_low"] = pd.Series([scale(v, "score") for v in frame["ci_low"]], dtype="float64", index=frame.index)
    frame["norm_ci_high"] = pd.Series([scale(v, "score") for v in frame["ci_high"]], dtype="float64",
                                      index=frame.index)  # fmt: skip
    return frame


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _board_critical_difference(table: pd.DataFrame, baselines: pd.DataFrame | None, board) -> CriticalDifference | None:
    """Average ranks over the board's metrics (the primary and the shown ones) of the page's first CD_METHODS rows
    and the scored baselines, from the rounded means the board shows. None with a single metric."""
    names = (board.primary_metric, *board.shown_metrics)
    if len(names) < 2:
        return None
    columns = ["score", *board.shown_metrics]
    labels: list[str] = []
    matrix: list[list[float]] = []
    for row in table.head(CD_METHODS).to_dict("records"):
        labels.append(f"#{row['rank']} {row['username']} · {row['method']}")
        matrix.append([_nan(row.get(c)) for c in columns])
    if baselines is not None:
        for row in baselines[baselines["status"] == "done"].to_dict("records"):
            labels.append(f"Baseline · {row['method']}")
            matrix.append([_nan(row.get(c)) for c in columns])
    if not matrix:
        return None
    result = critical_difference(
        matrix, methods=labels, blocks=[metrics.METRICS[n].label for n in names],
        higher_is_better=[metrics.METRICS[n].higher_is_better for n in names],
    )  # fmt: skip
    if result is None:
        return None
    return CriticalDifference(
        methods=result.methods,
        average_ranks=tuple(round(r, 4) for r in result.average_ranks),
        ranks=result.ranks,
        blocks=result.blocks,
        cd=round(result.cd, 4),
        friedman_statistic=rounded(result.friedman_statistic),
        friedman_p=rounded(result.friedman_p),
        cliques=result.cliques,
    )


def _nan(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


# --- comparing two methods --------------------------------------------------------------------------------------

BOARD_LABELS = {"public": "Public samples", "private": "Final (private samples)"}


@dataclass(frozen=True)
class Candidate:
    submission_id: int
    label: str
    is_baseline: bool


@dataclass(frozen=True)
class Candidates:
    """The methods a viewer may compare on a challenge's board: its top rows and the baselines."""

    challenge_id: str
    scored_on_server: bool
    board: str = "public"
    final_available: bool = False
    options: tuple[Candidate, ...] = ()
    more: bool = False  # the board has more rows than the options' first COMPARE_CANDIDATES


def _chosen_board(private_revealed: bool, board: str | None) -> str:
    if board is None:
        return "private" if private_revealed else "public"
    if board not in BOARD_LABELS:
        raise ValidationError("Choose the public or the final board.")
    if board == "private" and not private_revealed:
        raise ValidationError("The final leaderboard is revealed when the challenge has ended.")
    return board


def _open_challenge(conn, challenge_id: str):
    if not challenges_sql.exists(conn, challenge_id or ""):
        raise NotFound(f"There is no challenge {challenge_id!r}.")
    return rules_in(conn, challenge_id), evaluations_sql.get_evaluation(conn, challenge_id)


def comparison_candidates(db: Database, challenge_id: str, *, board: str | None = None) -> Candidates:
    with db.connect() as conn:
        rules, evaluation = _open_challenge(conn, challenge_id)
        if evaluation is None:
            return Candidates(challenge_id=challenge_id, scored_on_server=False)
        revealed = rules.private_revealed()
        board = _chosen_board(revealed, board)
        ranked = evaluations_sql.ranked_submissions(
            conn, challenge_id, split=board, best_per_user=False, finals_only=board == "private",
            limit=COMPARE_CANDIDATES + 1,
        )  # fmt: skip
        baselines = [b for b in evaluations_sql.baselines(conn, challenge_id, split=board) if b["status"] == "done"]
    options = [
        Candidate(r["submission_id"], f"#{r['rank']} {r['username']} · {r['method_name']}", False)
        for r in ranked[:COMPARE_CANDIDATES]
    ] + [Candidate(b["id"], f"Baseline · {b['method_name']}", True) for b in baselines]
    return Candidates(
        challenge_id=challenge_id,
        scored_on_server=True,
        board=board,
        final_available=revealed,
        options=tuple(options),
        more=len(ranked) > COMPARE_CANDIDATES,  # one row past the limit was asked for: no count of the whole board
    )


@dataclass(frozen=True)
class Comparison:
    challenge_id: str
    board: str  # the part the aggregates are over
    a: MethodCard
    b: MethodCard
    access: ComparisonAccess
    # metric, label, higher_is_better, n, mean_a, mean_b, difference, ci_low, ci_high, wins, losses, ties,
    # win_rate, p_value (rounded; None where fewer than MIN_STATISTIC_SAMPLES samples were paired)
    metrics: pd.DataFrame
    # split, sample, metric, a, b: per-sample pairs of the splits access.per_sample_splits (rounded)
    per_sample: pd.DataFrame
    resamples: int = BOOTSTRAP_RESAMPLES
    confidence: float = CONFIDENCE


_METRIC_COLUMNS = ["metric", "label", "higher_is_better", "n", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
                   "wins", "losses", "ties", "win_rate", "p_value"]  # fmt: skip
_PER_SAMPLE_COLUMNS = ["split", "sample", "metric", "a", "b"]


def compare(
    db: Database, actor_id: int | None, challenge_id: str, a_id: int, b_id: int, *, board: str | None = None
) -> Comparison:
    """Method A against method B on the same samples: per metric the paired aggregates over the board's part, and
    the per-sample pairs where exact.permissions allows (development samples; every part for organisers)."""
    if a_id == b_id:
        raise ValidationError("Choose two different methods to compare.")
    with db.connect() as conn:
        viewer = load_active_user(conn, actor_id)
        rules, evaluation = _open_challenge(conn, challenge_id)
        if evaluation is None:
            raise ValidationError(SCORE_ONLY_NOTE)
        revealed = rules.private_revealed()
        board = _chosen_board(revealed, board)
        owner_id = challenges_sql.get_owner(conn, challenge_id)
        rows = {r["id"]: r for r in evaluations_sql.method_cards(conn, challenge_id, [a_id, b_id])}
        for sid in (a_id, b_id):
            row = rows.get(sid)
            if row is None or not row["listed"] or row["status"] != "done":
                raise NotFound("Only methods on the leaderboard (and the baselines) can be compared.")
        final = all(
            rows[s]["kind"] == "baseline"
            or (rows[s]["user_id"] is not None
                and evaluations_sql.counts_at_the_end(conn, challenge_id, rows[s]["user_id"], s))
            for s in (a_id, b_id)
        )  # fmt: skip
        if board == "private" and not final:
            raise ValidationError(
                "On the final board only each participant's final submissions (and the baselines) are compared."
            )
        same = rows[a_id]["user_id"] is not None and rows[a_id]["user_id"] == rows[b_id]["user_id"]
        access = comparison_access(
            viewer, owner_id=owner_id, private_revealed=revealed, both_count_at_the_end=final, same_submitter=same
        )
        names = [m for m in metrics.METRICS]
        card_a, card_b = rows[a_id], rows[b_id]
        need_values = bool(access.per_sample_splits) or not all(
            _cache.get(_pair_key(db, challenge_id, card_a, card_b, board, m))[0] for m in names
        )
        values = evaluations_sql.per_sample_values(conn, challenge_id, [a_id, b_id], names) if need_values else {}
    entries = _read(values, {a_id, b_id} if need_values else set())
    if board not in access.aggregate_splits:  # pragma: no cover - the board choice above already refuses this
        raise ValidationError("These samples' figures are not public yet.")
    records = []
    for name in names:
        pair = _pair_of(db, challenge_id, card_a, card_b, board, name, entries)
        info = metrics.METRICS[name]
        record: dict[str, Any] = {"metric": name, "label": info.label, "higher_is_better": info.higher_is_better}
        if pair is None:
            record.update({c: None for c in _METRIC_COLUMNS[3:]})
        else:
            record.update(
                n=pair.n, mean_a=rounded(pair.mean_a), mean_b=rounded(pair.mean_b),
                difference=rounded(pair.difference), ci_low=rounded(pair.low), ci_high=rounded(pair.high),
                wins=pair.wins, losses=pair.losses, ties=pair.ties, win_rate=rounded(pair.win_rate),
                p_value=rounded(pair.p_value),
            )  # fmt: skip
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=_METRIC_COLUMNS)
    frame = _numeric(frame, ["mean_a", "mean_b", "difference", "ci_low", "ci_high", "win_rate", "p_value"])
    for column in ("n", "wins", "losses", "ties"):
        frame[column] = frame[column].astype("Int64")
    return Comparison(
        challenge_id=challenge_id,
        board=board,
        a=_card(card_a, viewer, owner_id),
        b=_card(card_b, viewer, owner_id),
        access=access,
        metrics=frame,
        per_sample=_per_sample_pairs(values, a_id, b_id, names, access.per_sample_splits),
    )


def _per_sample_pairs(
    values: dict[int, dict[str, Any]], a_id: int, b_id: int, names: list[str], allowed: tuple[str, ...]
) -> pd.DataFrame:
    entry_a, entry_b = values.get(a_id), values.get(b_id)
    if not entry_a or not entry_b or not allowed:
        return pd.DataFrame(columns=_PER_SAMPLE_COLUMNS)
    records = []
    for name in names:
        a = (entry_a.get("metrics") or {}).get(name)
        b = (entry_b.get("metrics") or {}).get(name)
        if a is None or b is None or len(a) != len(b):
            continue
        codes = _split_codes(entry_a, len(a))
        if codes.size != len(a):
            continue
        permitted = {splits.SPLIT_CODES[s] for s in allowed}
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if int(codes[index]) in permitted and x is not None and y is not None:
                records.append({"split": splits.SPLITS[int(codes[index])], "sample": index, "metric": name,
                                "a": rounded(x), "b": rounded(y)})  # fmt: skip
    return pd.DataFrame.from_records(records, columns=_PER_SAMPLE_COLUMNS)


def method_card(db: Database, actor_id: int | None, challenge_id: str, submission_id: int) -> MethodCard:
    """One leaderboard row's or baseline's public card."""
    with db.connect() as conn:
        viewer = load_active_user(conn, actor_id)
        if not challenges_sql.exists(conn, challenge_id or ""):
            raise NotFound(f"There is no challenge {challenge_id!r}.")
        owner_id = challenges_sql.get_owner(conn, challenge_id)
        rows = evaluations_sql.method_cards(conn, challenge_id, [submission_id])
    if not rows or not rows[0]["listed"]:
        raise NotFound("Only methods on the leaderboard (and the baselines) have a public card.")
    return _card(rows[0], viewer, owner_id)
