"""What only the JAX tab has: the x64 switch left alone, flax's own idiom, the differentiable loop,
and JAX in one process with every other framework, loaded before and after them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal
from test_registry import run_python

import d2lconv as dc
from d2lconv import backends

pytestmark = pytest.mark.skipif(
    not backends.is_installed("jax"), reason=f"jax is not installed here ({backends.install_hint('jax')})"
)
OTHERS = tuple(name for name in backends.BACKENDS if name not in ("numpy", "jax") and backends.is_installed(name))
FIGURE = "dc.to_numpy(dc.corr2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])).tolist()"


@pytest.fixture
def jax_tab():
    with dc.use_backend("jax") as tab:
        yield tab


def test_float64_keeps_jax_float32_defaults(jax_tab):
    import jax
    import jax.numpy as jnp

    x = dc.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    y = dc.conv2d(x, np.ones((1, 1, 2, 2)), padding="same")
    dx, dw = dc.vjp("conv2d", x, np.ones((1, 1, 2, 2), np.float32))
    assert (x.dtype, y.dtype, dx.dtype, dw.dtype) == (np.float64, np.float64, np.float64, np.float32)
    np.testing.assert_array_equal(dc.to_numpy(y)[0, 0, 0], [10.0, 14.0, 18.0, 10.0])
    assert not jax.config.jax_enable_x64
    assert jnp.zeros(2).dtype == jnp.float32 and jnp.asarray([1.0]).dtype == jnp.float32


def test_the_books_loop_differentiates_under_jax_grad(jax_tab):
    import jax

    image = np.arange(20.0, dtype=np.float32).reshape(4, 5)
    X, K = dc.tensor(image), dc.tensor([[0.5, -1.0], [2.0, 0.25]])
    dX, dK = jax.grad(lambda X, K: dc.corr2d_loop(X, K).sum(), argnums=(0, 1))(X, K)
    expected_dX, expected_dK = dc.vjp("corr2d", X, K)
    np.testing.assert_array_equal(dc.to_numpy(dK), dc.to_numpy(expected_dK))
    np.testing.assert_array_equal(dc.to_numpy(dX), dc.to_numpy(expected_dX))
    windows = [[image[a : a + 3, b : b + 4].sum() for b in range(2)] for a in range(2)]  # d sum(Y) / dK[a, b]
    np.testing.assert_array_equal(dc.to_numpy(dK), windows)


def test_conv2d_module_in_flax_idiom(jax_tab):
    import jax

    bound = dc.Conv2D((2, 3))
    module = jax_tab.Conv2D((2, 3), parent=None)  # unbound: parameters live outside, as flax has it
    X = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    params = module.init(jax.random.key(1), X)
    assert params["params"]["weight"].shape == (2, 3) and params["params"]["bias"].shape == (1,)
    weight, bias = dc.to_numpy(params["params"]["weight"]), dc.to_numpy(params["params"]["bias"])
    np.testing.assert_allclose(
        dc.to_numpy(module.apply(params, X)), signal.correlate2d(X, weight, "valid") + bias, rtol=1e-5, atol=1e-5
    )
    layer_params = bound.variables["params"]
    np.testing.assert_array_equal(dc.to_numpy(bound(X)), dc.to_numpy(module.apply({"params": layer_params}, X)))


def _load_in_order(names: tuple[str, ...]) -> list:
    code = (
        "import json, d2lconv as dc\nout = []\n"
        f"for name in {names!r}:\n    dc.set_backend(name)\n    out.append([name, {FIGURE}])\n"
        "print(json.dumps(out))"
    )
    result = run_python(code)
    assert result.returncode == 0, f"{' then '.join(names)}: exit {result.returncode}\n{result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.cross
@pytest.mark.skipif(not OTHERS, reason="no other framework is installed here")
@pytest.mark.parametrize("order", ["jax first", "jax last"])
def test_jax_with_every_other_framework_in_one_process(order):
    names = ("jax", *OTHERS) if order == "jax first" else (*OTHERS, "jax")
    assert _load_in_order(names) == [[name, [[19.0, 25.0], [37.0, 43.0]]] for name in names]
