"""Who may do what to a challenge, and what of its private data leaves the server: the one place for both.

What leaves the server (docs/security.md, "What leaves the server"):

* Anything per sample that is derived from private masks (per-sample scores, masks, the image gallery) reaches
  only the challenge's organisers: its recorded owner (any organiser when it has none, as in the Django admin)
  and administrators.
* The submitter of a result, and everyone for a baseline, get per-sample detail on the **development** samples
  only, whose masks are published with the evaluation inputs anyway.
* Everyone else gets aggregates: mean and standard deviation per metric over the public part, and over the
  private part once the challenge has ended and its private board is revealed (for a participant's own
  submissions only those that count for the final ranking), rounded to SHOWN_DECIMALS.
  Rankings are computed on the rounded values, so the order reveals nothing finer either.
* Statistics (exact/statistics.py, docs/statistics.md) are aggregates of the same parts and follow the same rule:
  confidence intervals, paired tests, win rates, mean differences and rank groups over the public part (and the
  private part once revealed, for submissions that count at the end and baselines), each over at least
  MIN_STATISTIC_SAMPLES samples, rounded to SHOWN_DECIMALS. Per-sample pairs (the comparison scatter) are shown
  on the development samples to everyone for leaderboard rows and baselines (their masks are public and the
  methods ranked in public), and on every part only to the challenge's organisers.
* Method cards (name, description, paper/code URL, submitter) are the submitter's own public text: shown to
  everyone for leaderboard rows and baselines. A result page is linked only where the viewer may open it.
* Chart specifications count as leaving the server: they carry only figures that passed through ``rounded``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exact.accounts import User
from exact.errors import PermissionDenied

SHOWN_DECIMALS = 4
# Aggregates over fewer samples than this are withheld: over a handful of samples a "mean" is a per-sample value.
MIN_STATISTIC_SAMPLES = 10


def rounded(value: float | None) -> float | None:
    """A figure as it may be shown: rounded to SHOWN_DECIMALS, None for missing or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), SHOWN_DECIMALS)


def is_challenge_organiser(user: User | None, owner_id: int | None) -> bool:
    """The challenge's own organiser, or any organiser for a challenge without a recorded owner, or an admin."""
    if user is None or not user.is_active:
        return False
    return user.is_admin or (user.is_organiser and (owner_id is None or owner_id == user.id))


def require_challenge_organiser(user: User | None, owner_id: int | None) -> User:
    if user is None or not user.is_organiser:
        raise PermissionDenied("Only organisers may create or edit challenges.")
    if not is_challenge_organiser(user, owner_id):
        raise PermissionDenied("Only the organiser who created this challenge (or an administrator) may change it.")
    return user


@dataclass(frozen=True)
class ResultAccess:
    """What one viewer may see of one submission's result."""

    summary_splits: tuple[str, ...]  # splits whose aggregates are shown
    per_sample_splits: tuple[str, ...]  # splits whose per-sample values (and gallery) are shown
    is_organiser: bool


def result_access(
    viewer: User | None,
    *,
    owner_id: int | None,
    submitter_id: int | None,
    is_baseline: bool,
    private_revealed: bool,
    counts_at_the_end: bool = False,
) -> ResultAccess | None:
    """None: this viewer may not open the result at all (another participant's submission).

    ``counts_at_the_end``: the submission is one of its submitter's final ones (chosen, else the best public one).
    Only those show their private figures after the reveal: a participant learns the private part of at most
    ``final_count`` submissions, not of every probe made while the challenge ran."""
    if is_challenge_organiser(viewer, owner_id):
        everything = ("development", "public", "private")
        return ResultAccess(everything, everything, True)
    own = viewer is not None and viewer.is_active and submitter_id is not None and viewer.id == submitter_id
    if not (own or is_baseline):
        return None
    with_private = private_revealed and (is_baseline or counts_at_the_end)
    summaries = ("development", "public", "private") if with_private else ("development", "public")
    return ResultAccess(summaries, ("development",), False)


def may_open_result(viewer: User | None, *, owner_id: int | None, submitter_id: int | None, is_baseline: bool) -> bool:
    """Whether a link to this submission's result page leads anywhere for this viewer (else none is shown)."""
    access = result_access(
        viewer, owner_id=owner_id, submitter_id=submitter_id, is_baseline=is_baseline, private_revealed=False
    )
    return access is not None


def board_statistics_allowed(board: str, *, private_revealed: bool) -> bool:
    """Statistics of a leaderboard's rows may be computed from the per-sample values of its own part: the public
    part always, the private part once the final board is revealed (its rows are then the final submissions)."""
    return board == "public" or (board == "private" and private_revealed)


@dataclass(frozen=True)
class ComparisonAccess:
    """What one viewer may see of a comparison of two leaderboard rows (or baselines)."""

    aggregate_splits: tuple[str, ...]  # splits whose paired aggregates (difference, win rate, p-value) are shown
    per_sample_splits: tuple[str, ...]  # splits whose per-sample pairs (the scatter) are shown
    is_organiser: bool


def comparison_access(
    viewer: User | None,
    *,
    owner_id: int | None,
    private_revealed: bool,
    both_count_at_the_end: bool,
    same_submitter: bool = False,
) -> ComparisonAccess:
    """``both_count_at_the_end``: each side is a baseline or one of its submitter's final submissions (the only
    ones whose private figures are public after the reveal).

    ``same_submitter``: two submissions of one participant. Only organisers compare those: two uploads that differ
    on one sample would make the paired figures (win counts, the mean difference) that sample's own comparison."""
    if is_challenge_organiser(viewer, owner_id):
        everything = ("development", "public", "private")
        return ComparisonAccess(everything, everything, True)
    if same_submitter:
        raise PermissionDenied(
            "Two submissions of the same participant are not compared here (the paired figures would show "
            "per-sample differences); their figures are on their result pages."
        )
    with_private = private_revealed and both_count_at_the_end
    aggregates = ("development", "public", "private") if with_private else ("development", "public")
    return ComparisonAccess(aggregates, ("development",), False)
