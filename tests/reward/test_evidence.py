import numpy as np
import pytest

from rlhf_gym.reward.evidence import gather
from rlhf_gym.types import Comparison, Correction, EStop, Query, Rating, Signal
from tests.conftest import make_segment


def test_every_record_becomes_pairs_or_ordinal_labels_over_padded_sequences():
    a, b = make_segment([1, 1]), make_segment([0, 0])
    long = make_segment([1, 0, 1, 0])
    ev = gather(
        [
            Comparison(Query(a, b), 1.0),
            Correction(original=b, corrected=a),
            EStop(before=a, after=b),
            Rating(a, level=3, levels=5),
            Signal(long, np.array([0.1, 0.2, 0.3, 0.0], np.float32), positive=False),
        ]
    )
    assert ev.obs.shape[:2] == (8, 4) and ev.n_items == 5
    assert ev.pair_labels.tolist() == [1.0, 1.0, 1.0]
    assert ev.pairs[1].tolist() == [2, 3]  # the corrected segment comes first
    assert ev.instruments == (("rating", 5), ("signal", 2))
    assert ev.levels.tolist() == [3, 0] and ev.instrument.tolist() == [0, 1]
    assert ev.weights[0].tolist() == [1, 1, 0, 0]  # padding weighs nothing
    assert ev.weights[7].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.0])


def test_bad_feedback_is_refused():
    with pytest.raises(ValueError, match="without feedback"):
        gather([])
    with pytest.raises(ValueError, match="rating level 5"):
        gather([Rating(make_segment([1]), level=5, levels=5)])
    with pytest.raises(ValueError, match="shapes"):
        gather([Comparison(Query(make_segment([1]), make_segment([1], obs_dim=2)), 1.0)])
