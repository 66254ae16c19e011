"""csrc/optimizer.c: the parameter updates (SGD with momentum and weight decay, Adam, SDLM) through
lenet_fast.optim, on every instruction-set path, against lenet_fast.reference's update rules."""
import numpy as np

from lenet_fast import optim, paper, reference


def test_updates_match_reference(path):
    rng = np.random.default_rng(5)
    n = 1000
    w, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)

    sgd = optim.SGD(lr=0.1, momentum=0.9, weight_decay=1e-3)
    sgd.bind(n)
    sgd.m[...] = rng.standard_normal(n)
    want_w, want_v = reference.sgd_update(w.astype(np.float64), g, sgd.m.astype(np.float64), 0.1, 0.9, 1e-3)
    p = w.copy()
    sgd.update(p, g)
    np.testing.assert_allclose(p, want_w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sgd.m, want_v, rtol=1e-6, atol=1e-6)

    adam = optim.Adam(lr=0.01, weight_decay=1e-2)
    adam.bind(n)
    p, m, v = w.copy(), np.zeros(n), np.zeros(n)
    want = w.astype(np.float64)
    for t in (1, 2, 3):
        adam.update(p, g)
        want, m, v = reference.adam_update(want, g.astype(np.float64), m, v, t, lr=0.01, weight_decay=1e-2)
    assert adam.t == 3
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)

    sdlm = optim.SDLM()
    sdlm.bind(n)
    h = rng.uniform(0, 1, n)
    sdlm.step[...] = 5e-4 / (paper.SDLM_MU + h)
    p = w.copy()
    sdlm.update(p, g)
    np.testing.assert_allclose(p, reference.sdlm_update(w.astype(np.float64), g, h, 5e-4), rtol=1e-6, atol=1e-7)
