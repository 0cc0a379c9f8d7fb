"""Online filter: which groups a round keeps, when an update is due, advantages over the kept groups."""

from __future__ import annotations

import pytest
import torch

from pebr_lit.grpo.advantages import GroupMeanStd
from pebr_lit.grpo.online_filter import FilterBuffer, OnlineFilter
from pebr_lit.grpo.rounds import RolloutRound, group_rows, set_advantages, update_rows

G = 2


def _round(totals: list[float]) -> RolloutRound:
    n = len(totals)
    return RolloutRound(
        prompts={}, ids=torch.zeros(n, 3, dtype=torch.long), mask=torch.ones(n, 3), total=torch.tensor(totals), rows=[]
    )


def test_rounds_are_gathered_until_b_varied_groups_and_the_surplus_is_dropped():
    buffer = FilterBuffer(OnlineFilter(max_rounds=5), group_size=G)
    # B = 3 groups per round. Round 1: groups 0 and 2 flat -> keeps group 1; not yet due.
    assert not buffer.add(_round([1, 1, 0, 1, 2, 2]), torch.tensor([True, False, True]), last=False)
    # Round 2: all three vary; two are needed (3 - 1), the third is surplus.
    assert buffer.add(_round([0, 1, 1, 0, 3, 4]), torch.tensor([False, False, False]), last=False)
    rounds, stats = buffer.pop()
    assert [r.rows for r in rounds] == [[2, 3], [0, 1, 2, 3]]
    assert stats == {"filter_rounds": 2.0, "filtered_groups": 2.0, "filter_surplus_groups": 1.0}
    assert buffer.pop()[1]["filter_rounds"] == 0.0  # emptied


def test_the_cap_and_the_stream_end_force_an_update_with_what_was_found():
    capped = FilterBuffer(OnlineFilter(max_rounds=2), group_size=G)
    assert not capped.add(_round([1, 1, 0, 1]), torch.tensor([True, False]), last=False)
    assert capped.add(_round([1, 1, 2, 2]), torch.tensor([True, True]), last=False)  # 2 rounds: due with 1 of 2 groups
    rounds, stats = capped.pop()
    assert [r.rows for r in rounds] == [[2, 3]] and stats["filtered_groups"] == 3.0
    ending = FilterBuffer(OnlineFilter(max_rounds=9), group_size=G)
    assert ending.add(_round([1, 1, 2, 2]), torch.tensor([True, True]), last=True)
    assert ending.pop()[0] == []  # nothing varied: no rounds to update with


def test_advantages_are_normalised_over_the_kept_groups_of_all_rounds():
    a, b = _round([9, 9, 0, 2]), _round([4, 8, 5, 5])
    a.rows, b.rows = group_rows([1], G), group_rows([0], G)
    set_advantages([a, b], GroupMeanStd(), G)
    # Kept groups (0, 2) and (4, 8): mean-centred and divided by their std (sqrt 2 and sqrt 8): -+0.7071.
    s = 2**-0.5
    torch.testing.assert_close(a.advantages, torch.tensor([0.0, 0.0, -s, s]), atol=1e-4, rtol=0)
    torch.testing.assert_close(b.advantages, torch.tensor([-s, s, 0.0, 0.0]), atol=1e-4, rtol=0)


def test_update_rows_of_rounds_with_different_widths_are_right_padded():
    a, b = _round([0, 1, 2, 3]), _round([0, 1])
    a.rows, b.rows = [2, 3], [1]
    values = [torch.arange(8.0).view(4, 2), torch.tensor([[7.0, 7.0, 7.0], [8.0, 9.0, 10.0]])]
    torch.testing.assert_close(
        update_rows([a, b], values), torch.tensor([[4.0, 5.0, 0.0], [6.0, 7.0, 0.0], [8.0, 9.0, 10.0]])
    )


def test_max_rounds_must_be_positive():
    with pytest.raises(ValueError, match="max_rounds"):
        OnlineFilter(max_rounds=0)
