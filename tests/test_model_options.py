"""LeNet5's options (docs/training.md): the modern variant's activation, dropout before C5 and F6, the
hinge loss and the initialisations. The model's gradients against the reference for each option,
training bit-identical for 1 and 2 threads and exact on resume with dropout, small models that learn with
each, model files and pickles carrying the options, and the errors for bad options."""
import pathlib
import pickle

import numpy as np
import pytest

import lenet_fast
from lenet_fast import _core, datasets, model, paper
from lenet_fast import reference as ref
from lenet_fast.model import LeNet5

ACTIVATIONS = ["relu", "leaky_relu", "elu", "tanh", "sigmoid"]
openmp = pytest.mark.skipif(not lenet_fast.build_info()["openmp"], reason="built without OpenMP")


TEST_DIGITS = datasets.load_mnist(pathlib.Path(__file__).parent / "data", "test")  # tests/data: 1,000


def subset(n, seed=0):
    """n of the 1,000 MNIST test digits in tests/data, in a seeded order."""
    x, y = TEST_DIGITS
    order = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[order], y[order]


def ref_params(m):
    return ref.with_centers({k: v.astype(np.float64) for k, v in m.params.items()}, m.variant)


def close(got, want, name):
    scale = np.abs(want).max()
    assert scale > 1e-6, name
    assert np.max(np.abs(got - want) - 2e-3 * np.abs(want)) <= 2e-4 * scale, name


# ---- activations --------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_forward_and_gradient_match_the_reference(activation):
    m = LeNet5("modern", seed=1, activation=activation)
    x, y = subset(13, seed=1)
    xn = ref.normalize_input(x).astype(np.float64)
    p = ref_params(m)
    out = ref.forward(p, xn, "modern", activation)
    np.testing.assert_allclose(m.forward(x), out, rtol=1e-4, atol=1e-4 * np.abs(out).max())
    grads, losses = m.gradient(x, y)
    want_losses, want = ref.backward(p, xn, y, "modern", activation=activation)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    for name in grads:
        close(grads[name], want[name], f"{activation}: {name}")


@openmp
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_training_with_each_activation_is_bit_identical_for_1_and_2_threads(activation, restore_threads):
    x, y = subset(300, seed=2)
    got = []
    for threads in (1, 2):
        lenet_fast.set_num_threads(threads)
        m = LeNet5("modern", seed=3, activation=activation, dropout=0.3)
        m.fit(x, y, epochs=1, batch_size=32, optimizer="sgd", verbose=0)
        got.append(m.params_vector.copy())
    np.testing.assert_array_equal(got[0], got[1])


def test_activations_change_the_network():
    x, _ = subset(4)
    outs = [LeNet5("modern", activation=a).forward(x) for a in ACTIVATIONS]
    for i in range(len(outs)):
        for j in range(i):
            assert not np.allclose(outs[i], outs[j])


# ---- dropout --------------------------------------------------------------------------------------------


def test_dropout_is_the_identity_at_inference():
    x, _ = subset(37)
    plain, dropped = LeNet5("modern", seed=4), LeNet5("modern", seed=4, dropout=0.5)
    assert [l.name for l in dropped.layers] == ["c1", "s2", "c3", "s4", "drop_c5", "c5", "drop_f6", "f6", "out"]
    np.testing.assert_array_equal(dropped.forward(x), plain.forward(x))
    classic = LeNet5("classic", dropout=0.5)
    np.testing.assert_array_equal(classic.forward(x), LeNet5("classic").forward(x))


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_training_gradient_with_dropout_matches_the_reference_with_the_same_masks(variant):
    """The trainer's gradient in training mode (fit's seed 5, epoch 1, images from position 64 on) is the
    reference's with the masks reference.dropout_mask draws for the same keys."""
    m = LeNet5(variant, seed=2, dropout=0.5)
    x, y = subset(21, seed=3)
    grad, losses, out = m.trainer().gradient(x, y, m.default_loss, dropout=(5, 1, 64))
    index = {l.name: i for i, l in enumerate(m.layers)}
    masks = {name: ref.dropout_mask(_core.dropout_key(5, 1, index["drop_" + name]), 64, len(x), units, 0.5)
             .astype(np.float64) for name, units in (("c5", 400), ("f6", 120))}
    xn = ref.normalize_input(x).astype(np.float64)
    want_losses, want = ref.backward(ref_params(m), xn, y, variant, masks=masks)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    got = model._views(grad, m.params)
    for name in want:
        close(got[name], want[name], f"{variant} {name}")
    evaluation, _, _ = m.trainer().gradient(x, y, m.default_loss)  # no context: no dropout
    assert not np.array_equal(evaluation, grad)


def test_resume_with_dropout_is_exact(tmp_path):
    x, y = subset(300, seed=6)
    whole = LeNet5("modern", seed=1, dropout=0.5)
    whole.fit(x, y, epochs=2, batch_size=32, optimizer="sgd", verbose=0, seed=9)
    part = LeNet5("modern", seed=1, dropout=0.5)
    ck = tmp_path / "run.npz"
    part.fit(x, y, epochs=1, batch_size=32, optimizer="sgd", verbose=0, seed=9, checkpoint=ck)
    resumed = LeNet5("modern", seed=1, dropout=0.5)
    resumed.fit(x, y, epochs=2, batch_size=32, optimizer="sgd", verbose=0, seed=9, resume=ck)
    np.testing.assert_array_equal(resumed.params_vector, whole.params_vector)
    other = LeNet5("modern", seed=1, dropout=0.25)
    with pytest.raises(ValueError, match="other options"):
        other.fit(x, y, epochs=2, batch_size=32, optimizer="sgd", verbose=0, seed=9, resume=ck)
    assert lenet_fast.load(ck).dropout == 0.5  # a checkpoint's weights load with the options


def test_dropout_changes_training_and_the_seed_changes_the_masks():
    x, y = subset(200, seed=7)
    runs = []
    for dropout, seed in ((0.0, 1), (0.5, 1), (0.5, 2)):
        m = LeNet5("modern", seed=0, dropout=dropout)
        m.fit(x, y, epochs=1, batch_size=32, optimizer="sgd", verbose=0, seed=seed)
        runs.append(m.params_vector.copy())
    assert not np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[1], runs[2])


# ---- hinge loss -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_hinge_gradient_matches_the_reference(variant):
    m = LeNet5(variant, seed=3)
    x, y = subset(13, seed=4)
    grads, losses = m.gradient(x, y, loss="hinge")
    want_losses, want = ref.backward(ref_params(m), ref.normalize_input(x).astype(np.float64), y, variant,
                                     loss="hinge")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4, atol=1e-4)
    for name in grads:
        close(grads[name], want[name], f"{variant} {name}")


@pytest.mark.parametrize("variant, lr", [("modern", 0.01), ("classic", 0.001)])
def test_a_model_learns_with_the_hinge_loss(variant, lr):
    """500 digits, 4 epochs of SGD with momentum: the mean loss falls and the training error drops well
    below chance (90%)."""
    x, y = subset(500, seed=8)
    m = LeNet5(variant, seed=0)
    history = m.fit(x, y, epochs=4, batch_size=16, loss="hinge", verbose=0,
                    optimizer=lenet_fast.optim.SGD(lr=lr, momentum=0.9))
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert history[-1]["error"] < 0.5
    assert np.mean(m.predict(x) != y) < 0.5


def test_sdlm_refuses_the_hinge_loss_before_any_work(tmp_path):
    x, y = subset(20)
    model = LeNet5("classic")
    before = model.params_vector.copy()
    with pytest.raises(ValueError, match="'sdlm'.*'hinge' has none"):
        model.fit(x, y, epochs=1, loss="hinge", verbose=0, checkpoint=tmp_path / "c.npz")
    assert np.array_equal(model.params_vector, before) and not (tmp_path / "c.npz").exists()
    with pytest.raises(ValueError, match="hinge.*no Gauss-Newton curvature"):  # and the engine's own check
        model.curvature(x, y, loss="hinge")


# ---- initialisations ------------------------------------------------------------------------------------


def test_the_default_initialisations_are_todays():
    for variant, init in (("classic", "paper"), ("modern", "he")):
        default, named = model.init_params(variant, seed=5), model.init_params(variant, seed=5, init=init)
        assert all(np.array_equal(default[k], named[k]) for k in default)
        assert LeNet5(variant).init == init


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_initialisations_have_their_ranges_and_spreads(variant):
    """On the real shapes: paper uniform within +-2.4/F (reaching 90% of it in arrays of 100 or more); Xavier uniform within
    +-sqrt(6 / (F + fan_out)) with the uniform's std (limit / sqrt(3)) within 10%; He normal with std
    sqrt(2 / F) within 10% (layers with at least 500 weights); zero biases for Xavier and He."""
    shapes, outs = model.param_shapes(variant), model.fan_outs(variant)
    for init in ("paper", "xavier", "he"):
        params = model.init_params(variant, seed=11, init=init)
        for name, (shape, fan) in shapes.items():
            a = params[name].astype(np.float64)
            fan_b = np.broadcast_to(fan, shape)
            if name.endswith(".bias") and init != "paper":
                assert not a.any(), (init, name)
                continue
            if init == "paper":
                limit = paper.INIT_SCALE / fan_b
            elif init == "xavier":
                limit = np.sqrt(6.0 / (fan_b + np.broadcast_to(outs[name], shape)))
            else:
                z = a / np.sqrt(2.0 / fan_b)
                if a.size >= 500:
                    assert abs(z.std() - 1) < 0.1, (init, name, z.std())
                continue
            assert np.all(np.abs(a) <= limit * (1 + 1e-6)), (init, name)  # float32 rounding
            if a.size >= 100:
                assert np.max(np.abs(a) / limit) > 0.9, (init, name)
            if a.size >= 500:
                assert abs((a / limit).std() * np.sqrt(3) - 1) < 0.1, (init, name)


def test_c3_fan_out_follows_table_i():
    """Each S2 map feeds 10 of the 16 C3 maps (Table I's columns), 25 weights each: 250, not the dense
    16 * 25 = 400."""
    outs = model.fan_outs("classic")["c3.weight"]
    per_input = paper.C3_TABLE.sum(axis=0) * 25
    assert per_input.tolist() == [250] * 6
    _, cols = np.nonzero(paper.C3_TABLE)
    np.testing.assert_array_equal(outs[:, 0, 0], per_input[cols])
    assert model.fan_outs("modern")["c3.weight"] == 400 and model.fan_outs("classic")["c5.weight"] == 120


# ---- files, pickles, repr and bad options -----------------------------------------------------------------


def test_files_and_pickles_carry_the_options(tmp_path):
    m = LeNet5("modern", seed=2, activation="elu", dropout=0.25)
    m.save(tmp_path / "m.npz")
    x, _ = subset(5)
    for copy in (lenet_fast.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(m))):
        assert (copy.activation, copy.dropout) == ("elu", 0.25)
        np.testing.assert_array_equal(copy.forward(x), m.forward(x))
    assert repr(m) == "LeNet5(variant='modern', activation='elu', dropout=0.25, params=61706)"
    assert repr(LeNet5("classic", init="xavier")) == "LeNet5(variant='classic', init='xavier', params=60000)"
    assert repr(LeNet5("modern")) == "LeNet5(variant='modern', params=61706)"


def test_an_older_file_loads_with_todays_defaults(tmp_path):
    m = LeNet5("modern", seed=2, activation="sigmoid", dropout=0.5)
    arrays = {k: v for k, v in model._entries(m).items() if k not in ("__activation__", "__dropout__")}
    assert len(arrays) == len(model._entries(m)) - 2
    assert set(model._entries(LeNet5("modern"))) == set(arrays)  # a default model writes no option
    np.savez(tmp_path / "old.npz", **arrays)
    old = lenet_fast.load(tmp_path / "old.npz")
    assert (old.activation, old.dropout) == ("relu", 0.0)


@pytest.mark.parametrize("entry, value, message", [("__activation__", "swish", "activation must be one of"),
                                                    ("__dropout__", 1.5, "dropout must be a number in")])
def test_a_file_with_an_unknown_option_is_refused(tmp_path, entry, value, message):
    arrays = dict(model._entries(LeNet5("modern")))
    arrays[entry] = np.array(value)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        lenet_fast.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="modern", activation="swish"), r"activation must be one of \['relu', 'leaky_relu'"),
    (dict(variant="classic", activation="relu"), "activation is for the modern variant"),
    (dict(variant="modern", dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (dict(variant="modern", dropout=-0.1), r"dropout must be a number in \[0, 1\)"),
    (dict(variant="classic", init="lecun"), r"init must be one of \['paper', 'xavier', 'he'\]"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LeNet5(**kwargs)
    with pytest.raises(TypeError):
        LeNet5("modern", dropout="0.5")
