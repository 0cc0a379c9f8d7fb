"""Update buffers: which groups enter the update, when it runs, and the advantages it uses."""

from __future__ import annotations

import torch

from pebr_lit.grpo.advantages import BatchStd, GroupMeanStd
from pebr_lit.grpo.buffers import MaskZeroVariance, PassThrough, update_buffer
from pebr_lit.grpo.online_filter import FilterBuffer, OnlineFilter
from pebr_lit.grpo.rounds import RolloutRound

G = 2


def _round(totals: list[float]) -> RolloutRound:
    n = len(totals)
    return RolloutRound(
        prompts={}, ids=torch.zeros(n, 3, dtype=torch.long), mask=torch.ones(n, 3), total=torch.tensor(totals), rows=[]
    )


def test_pass_through_updates_on_every_group_of_every_round():
    buffer = PassThrough(group_size=G)
    assert buffer.add(_round([1, 1, 0, 2]), torch.tensor([True, False]), last=False)
    assert len(buffer.rounds) == 1  # one rollout batch consumed by the update
    rounds, stats = buffer.pop()
    assert [r.rows for r in rounds] == [[0, 1, 2, 3]] and stats == {} and buffer.rounds == []


def test_the_mask_leaves_flat_groups_out_without_resampling():
    buffer = MaskZeroVariance(group_size=G)
    assert buffer.add(_round([1, 1, 0, 2]), torch.tensor([True, False]), last=False)
    rounds, _ = buffer.pop()
    assert [r.rows for r in rounds] == [[2, 3]]
    assert buffer.add(_round([1, 1, 3, 3]), torch.tensor([True, True]), last=False)  # due, but nothing to update on
    assert len(buffer.rounds) == 1 and buffer.pop()[0] == []


def test_masked_advantages_are_those_of_the_whole_round():
    # BatchStd divides by the std of all B*G rewards: over the whole round [1, 1, 0, 2] that is
    # sqrt(2/3) (mean 1, squares 0+0+1+1 over n-1=3), so group (0, 2) gets -+1/sqrt(2/3) = -+1.2247.
    masked, whole = MaskZeroVariance(group_size=G), _round([1, 1, 0, 2])
    masked.add(whole, torch.tensor([True, False]), last=False)
    rounds, _ = masked.pop()
    masked.set_advantages(rounds, BatchStd())
    torch.testing.assert_close(whole.advantages[2:], torch.tensor([-1.2247, 1.2247]), atol=1e-4, rtol=0)


def test_the_buffer_follows_the_module_options():
    assert type(update_buffer(None, False, G)) is PassThrough
    assert type(update_buffer(None, True, G)) is MaskZeroVariance
    assert type(update_buffer(OnlineFilter(), True, G)) is FilterBuffer  # the filter drops flat groups too


def test_a_filter_update_without_any_varied_group_sets_no_advantages():
    capped = FilterBuffer(OnlineFilter(max_rounds=1), group_size=G)
    assert capped.add(_round([1, 1, 2, 2]), torch.tensor([True, True]), last=False)
    rounds, stats = capped.pop()
    capped.set_advantages(rounds, GroupMeanStd())  # no rounds: nothing to normalise, no error
    assert rounds == [] and stats["filter_rounds"] == 1.0
