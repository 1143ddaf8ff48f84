"""Verdict files: validated row by row, the latest verdict per image, applied over the teacher's
scores, and written by two reviewers (or two processes) at once without losing a row."""

import multiprocessing
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from detector_pipeline.errors import BadInput
from detector_pipeline.review import verdicts

WHEN = pd.Timestamp("2026-12-01T10:00:00Z")
KNOWN = pd.DataFrame({"sha256": ["a" * 64, "b" * 64, "c" * 64], "file": ["img/a.png", "img/b.png", "/feed/c.jpg"]})


def _validate(rows: list[dict], tmp_path: Path) -> verdicts.ValidatedVerdicts:
    return verdicts.validate_verdicts(pd.DataFrame(rows), KNOWN, tmp_path, "team.csv", WHEN)


def test_good_rows_are_accepted_by_hash_or_by_path(tmp_path):
    result = _validate([{"sha256": "A" * 64, "verdict": "AI", "note": "hands", "reviewer": "ana"},
                        {"image_path": "img/b.png", "verdict": "real", "decided_at": "2026-12-02T08:00:00+01:00"},
                        {"image_path": "/feed/c.jpg", "verdict": "unsure"}], tmp_path)
    assert result.quarantined.empty
    table = result.accepted
    assert table["sha256"].tolist() == ["a" * 64, "b" * 64, "c" * 64]
    assert table["verdict"].tolist() == ["ai", "real", "unsure"]
    assert table["reviewer"].tolist() == ["ana", "unknown", "unknown"]
    assert table["decided_at"].iloc[1] == pd.Timestamp("2026-12-02T07:00:00Z") and table["decided_at"].iloc[2] == WHEN


def test_bad_rows_are_quarantined_with_a_reason_that_names_the_image(tmp_path):
    result = _validate([{"sha256": "a" * 64, "verdict": "maybe"},
                        {"image_path": "img/nope.png", "verdict": "ai"},
                        {"sha256": "d" * 64, "verdict": "real"},
                        {"sha256": "", "image_path": "", "verdict": "ai"},
                        {"sha256": "b" * 64, "verdict": "ai"},
                        {"image_path": "img/b.png", "verdict": "real"},
                        {"sha256": "c" * 64, "verdict": "real", "decided_at": "yesterday-ish"},
                        {"sha256": "a" * 64, "verdict": "ai"}, {"sha256": "a" * 64, "verdict": "ai"}], tmp_path)
    reasons = dict(zip(result.quarantined["row"], result.quarantined["reason"]))
    assert reasons[0] == "verdict 'maybe' is not one of ai, real, unsure"
    assert reasons[1] == "unknown image img/nope.png: in no label batch and no scored feed"
    assert reasons[2] == f"unknown image {'d' * 64}: in no label batch and no scored feed"
    assert reasons[3] == "no image: give sha256 or image_path"
    assert "conflicting verdict" in reasons[4] and "conflicting verdict" in reasons[5]
    assert "is not a date" in reasons[6]
    assert reasons[8] == "duplicate of row 7"
    assert result.accepted["row"].tolist() == [7]  # nothing lost: every input row is in one table or the other
    assert result.n_input == 9


@pytest.mark.parametrize("content, message", [("image_path,score\nx,1\n", "lacks the column `verdict`"),
                                              ("verdict,note\nai,x\n", "names no image"),
                                              (b"\x00\x01garbage", "unreadable verdict file")])
def test_a_file_that_cant_be_read_as_verdicts_is_one_error(tmp_path, content, message):
    path = tmp_path / ("v.parquet" if isinstance(content, bytes) else "v.csv")
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(verdicts.VerdictsError, match=message) as raised:
        verdicts.read_verdict_file(path)
    assert isinstance(raised.value, BadInput) and "\n" not in str(raised.value)


def test_the_latest_verdict_on_an_image_wins_across_files():
    early = pd.DataFrame([{"sha256": "a", "file": "a", "verdict": "ai", "note": "", "reviewer": "ana",
                           "decided_at": WHEN, "verdict_file": "x.csv", "row": 0}])
    late = early.assign(verdict="real", reviewer="ben", decided_at=WHEN + pd.Timedelta("1h"), verdict_file="a.csv")
    assert verdicts.latest_verdicts({"x.csv": early, "a.csv": late})["reviewer"].tolist() == ["ben"]
    assert verdicts.latest_verdicts(early)["verdict"].tolist() == ["ai"]
    assert verdicts.latest_verdicts(None).empty


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1, allow_subnormal=False), st.sampled_from([None, "ai", "real", "unsure"])), min_size=1, max_size=30))
def test_a_verdict_overrides_only_its_own_row(rows):
    labels = pd.DataFrame({"sha256": [f"h{i}" for i in range(len(rows))], "ai_score": [s for s, _ in rows]})
    given_verdicts = pd.DataFrame([{"sha256": f"h{i}", "verdict": v, "reviewer": "ana"}
                                   for i, (_, v) in enumerate(rows) if v is not None],
                                  columns=["sha256", "verdict", "reviewer"])
    table = verdicts.apply_verdicts(labels, given_verdicts)
    for i, (score, verdict) in enumerate(rows):
        expected = {"ai": 1.0, "real": 0.0}.get(verdict, score)
        assert table["ai_score"].iloc[i] == expected and table["teacher_score"].iloc[i] == score
        assert table["overridden"].iloc[i] == (verdict in ("ai", "real"))
        assert table["label"].iloc[i] == int(expected >= 0.5)


def _write_many(data_dir: str, reviewer: str, start: int, n: int) -> None:
    for i in range(start, start + n):
        verdicts.record_verdicts(Path(data_dir), reviewer, [{"sha256": f"{i:064d}", "verdict": "ai"}])


@pytest.mark.parametrize("reviewers", [("ana", "ana"), ("ana", "ben")])
def test_two_writers_at_once_lose_nothing(tmp_path, reviewers):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(tmp_path), name, k * 1000, 40))
               for k, name in enumerate(reviewers)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
        assert w.exitcode == 0
    files = verdicts.verdict_files(tmp_path / verdicts.VERDICTS_DIR)
    assert [f.name for f in files] == sorted({f"review-{r}.parquet" for r in reviewers})
    written = pd.concat([pd.read_parquet(f) for f in files])
    assert sorted(written["sha256"]) == sorted([f"{i:064d}" for i in range(40)] + [f"{i:064d}" for i in range(1000, 1040)])
    assert not list((tmp_path / verdicts.VERDICTS_DIR).glob("*.partial"))


def test_a_reviewer_name_that_is_no_file_name_is_refused(tmp_path):
    with pytest.raises(BadInput, match="reviewer name"):
        verdicts.record_verdicts(tmp_path, "../etc", [{"sha256": "a", "verdict": "ai"}])
