import numpy as np
import pytest

from prism_edge import server as srv
from prism_edge.config import ServerConfig


def state_with(p):
    return srv.ServerState(srv.logit(np.asarray(p, np.float64)))


def test_mada_lambda_is_the_hamming_distance():
    # probabilities of exactly 0/1 make the sampled masks known: Hamming distance 2 of 5
    p_old = np.array([1, 0, 1, 0, 1], np.float32)
    p_new = np.array([1, 1, 0, 0, 1], np.float32)
    assert srv.mada_lambda(p_old, p_new, np.random.default_rng(0)) == pytest.approx(2 / 5)
    assert srv.mada_lambda(p_old, p_old, np.random.default_rng(0)) == 0.0


def test_mada_lambda_statistics():
    rng = np.random.default_rng(1)
    p_old, p_new = np.full(100_000, 0.2, np.float32), np.full(100_000, 0.7, np.float32)
    want = 0.2 * 0.3 + 0.8 * 0.7  # P(m_old != m_new) for independent draws
    assert srv.mada_lambda(p_old, p_new, rng) == pytest.approx(want, abs=0.01)


def test_average_of_known_masks_without_mada():
    masks = [np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1], np.uint8),
             np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 1], np.uint8),
             np.array([1, 0, 1, 0, 1, 0, 0, 0, 0, 1], np.uint8)]
    cfg = ServerConfig(mada=False, clip=0.01)
    st = srv.init_state(10, cfg)
    res = srv.aggregate(st, {str(i): np.packbits(m) for i, m in enumerate(masks)}, cfg,
                        np.random.default_rng(0))
    want = np.clip(np.mean(masks, 0), 0.01, 0.99)
    assert res.accepted == ["0", "1", "2"] and res.lam == 1.0
    assert np.allclose(st.prob, want, atol=1e-6)


def test_a_server_step_moves_the_probability_part_of_the_way_to_the_average():
    cfg = ServerConfig(mada=False, step=0.25, clip=0.01)
    st = state_with([0.5, 0.5, 0.2, 0.8])
    masks = [np.array([1, 0, 1, 1], np.uint8), np.array([1, 0, 0, 1], np.uint8)]
    res = srv.aggregate(st, {str(i): np.packbits(m) for i, m in enumerate(masks)}, cfg,
                        np.random.default_rng(0))
    avg = np.array([0.99, 0.01, 0.5, 0.99])  # the clipped average of the two masks
    assert res.lam == 0.25
    assert np.allclose(st.prob, np.array([0.5, 0.5, 0.2, 0.8]) + 0.25 * (avg - [0.5, 0.5, 0.2, 0.8]))


def test_a_server_step_with_mada_is_refused():
    from prism_edge.config import RunConfig, check_settings
    from prism_edge.errors import PrismError

    with pytest.raises(PrismError, match="--no-mada"):
        check_settings(RunConfig(server=ServerConfig(mada=True, step=0.5)))
    check_settings(RunConfig(server=ServerConfig(mada=False, step=0.5)))
    with pytest.raises(PrismError, match="dense"):  # dense FedAvg would silently ignore it
        check_settings(RunConfig(mode="dense", server=ServerConfig(mada=False, step=0.5)))


def test_mada_mixes_old_and_new_scores():
    cfg = ServerConfig(mada=True, clip=0.01)
    st = state_with(np.full(8, 0.5))
    s_old = st.scores.copy()
    up = np.packbits(np.array([1, 1, 1, 1, 0, 0, 0, 0], np.uint8))
    res = srv.aggregate(st, {"a": up}, cfg, np.random.default_rng(3))
    s_new = srv.logit(np.clip(np.array([1, 1, 1, 1, 0, 0, 0, 0], np.float64), 0.01, 0.99))
    assert 0 < res.lam < 1
    assert np.allclose(st.scores, res.lam * s_new + (1 - res.lam) * s_old)


@pytest.mark.parametrize("bad,reason", [
    (np.zeros(3, np.uint8), "shape"),
    (np.zeros(2, np.float32), "dtype"),
    (np.zeros((2, 1), np.uint8), "shape"),
    ([1, 2], "expected a numpy"),
    (np.array([0, 0xFF], np.uint8), "padding"),
])
def test_malformed_upload_is_rejected_and_the_rest_aggregated(bad, reason, caplog):
    cfg = ServerConfig(mada=False, clip=0.01)
    st = srv.init_state(12, cfg)
    good = np.packbits(np.ones(12, np.uint8))
    with caplog.at_level("WARNING"):
        res = srv.aggregate(st, {"good": good, "bad": bad}, cfg, np.random.default_rng(0))
    assert res.accepted == ["good"] and reason in res.rejected["bad"]
    assert "rejected upload from client bad" in caplog.text
    assert np.allclose(st.prob, 0.99)


def test_min_clients_keeps_old_state():
    cfg = ServerConfig(min_clients=2)
    st = srv.init_state(8, cfg)
    before = st.scores.copy()
    res = srv.aggregate(st, {"a": np.packbits(np.ones(8, np.uint8))}, cfg, np.random.default_rng(0))
    assert not res.updated and np.array_equal(st.scores, before)


def test_downlink_uint8_roundtrip():
    p = np.random.default_rng(0).random(1000).astype(np.float32)
    q = srv.encode_downlink(p, "uint8")
    assert q.dtype == np.uint8 and q.nbytes == 1000
    back = srv.decode_downlink(q, 1e-3)
    assert np.abs(np.clip(p, 1e-3, 1 - 1e-3) - back).max() <= 0.5 / 255 + 1e-6


def test_client_selection():
    rng = np.random.default_rng(0)
    sel = srv.select_clients(10, 0.3, rng)
    assert len(sel) == 3 and len(set(sel)) == 3 and all(0 <= c < 10 for c in sel)


def test_final_average_is_the_mean_of_the_last_k_rounds():
    ps = [np.array([0.1, 0.9, 0.5, 0.3]) + 0.01 * r for r in range(6)]
    st = state_with(ps[0])

    def play(st, rounds, k, upto):
        for r in range(st.round + 1, upto + 1):
            st.scores, st.round = srv.logit(ps[r - 1]), r
            srv.tally_final(st, rounds, k)

    play(st, 5, 3, 2)
    assert st.final_rounds == 0 and np.array_equal(srv.final_prob(st), st.prob)  # before it
    play(st, 5, 3, 5)
    assert st.final_rounds == 3 and np.allclose(srv.final_prob(st), np.mean(ps[2:5], 0))
    last = state_with(ps[0])
    play(last, 5, 1, 5)  # K = 1: exactly the last round's probability, as before the option
    assert np.array_equal(srv.final_prob(last), last.prob)
    # a resume asking for one more round moves the window to rounds 4-6; rounds 4-5 were summed
    # into the old window's mean, so the new one restarts and says it holds one round
    resumed = srv.ServerState(st.scores.copy())
    srv.restore(resumed, srv.saved(st))
    play(resumed, 6, 3, 6)
    assert resumed.final_rounds == 1 and np.allclose(srv.final_prob(resumed), ps[5])


def test_a_final_average_longer_than_the_run_is_refused():
    from prism_edge.config import RunConfig, check_settings
    from prism_edge.errors import PrismError

    with pytest.raises(PrismError, match="1 .* to 4"):
        check_settings(RunConfig(rounds=4, final_average=5))
    with pytest.raises(PrismError, match="dense"):
        check_settings(RunConfig(rounds=4, final_average=2, mode="dense"))
    check_settings(RunConfig(rounds=4, final_average=4))
