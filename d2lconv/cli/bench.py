"""``d2lconv bench``: speed per backend, each in its own process (``d2lconv.harness.bench``). One command,
four measurements: the book's loop vs ``corr2d`` vs the framework's convolution (the default), the
batched ops and their gradients (``--ops``), a training epoch of ``dc.train``'s networks (``--train``;
``--lenet`` is ``--train --net lenet``), ported networks (``--port``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..book import training
from ..core.checks import data_format
from ..harness.bench import corr2d, ops, port, render, train
from ..harness.bench.targets import KERNEL
from .args import (
    add_backends_option,
    add_net_option,
    add_timeout_option,
    int_at_least,
    non_negative_int,
    plot_path,
    positive_int,
    wrote,
)
from .console import run_and_show

EXIT_CODES = "exit codes: 0 measured; 2 a requested backend is missing, crashed or timed out, or a bad argument"


def bench_command(args: argparse.Namespace) -> int:
    """``d2lconv bench``: measure, then print a table or JSON, and write the plot if asked."""
    if args.port:
        timeout = args.timeout or port.DEFAULT_TIMEOUT
        report = run_and_show(
            args,
            "porting and timing MobileNetV2",
            lambda **progress: port.run_bench(args.backends, args.repeat, timeout, **progress),
            render.render_port,
        )
        plot = None
    elif args.train or args.lenet:
        nets = ["lenet"] if args.lenet else args.net or list(train.DEFAULT_NETS)
        timeout = args.timeout or train.DEFAULT_TIMEOUT
        report = run_and_show(
            args,
            f"training {', '.join(nets)}",
            lambda **progress: train.run_bench(args.backends, nets, args.epochs, timeout, **progress),
            render.render_train,
            steps=True,
        )
        plot = None
    elif args.ops:
        layers = args.layer or [ops.Layer.parse(spec) for spec in ops.DEFAULT_LAYERS]
        timeout = args.timeout or ops.DEFAULT_TIMEOUT
        report = run_and_show(
            args,
            "measuring",
            lambda **progress: ops.run_ops_bench(
                args.backends, layers, args.repeat, timeout, args.data_format, **progress
            ),
            render.render_ops,
        )
        plot = render.plot_ops
    else:
        timeout = args.timeout or corr2d.DEFAULT_TIMEOUT
        report = run_and_show(
            args,
            "measuring",
            lambda **progress: corr2d.run_bench(
                args.backends, args.size, args.loop_max, args.repeat, timeout, **progress
            ),
            render.render_corr2d,
        )
        plot = render.plot_corr2d
    if report is None:
        return 2
    if args.plot and plot is not None:
        plot(report, args.plot)
        wrote(args.plot)
    return int(report["exit_code"])


def layer_argument(text: str) -> ops.Layer:
    """The argparse type of ``--layer``."""
    try:
        return ops.Layer.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def data_format_argument(text: str) -> str:
    """The argparse type of ``--data-format``: ``"NCHW"`` or ``"NHWC"``."""
    try:
        return data_format(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands: Any) -> None:
    """Register ``d2lconv bench`` on the CLI's subcommands."""
    kernel = f"{KERNEL[0]}x{KERNEL[1]}"
    summary = f"time the book's loop, corr2d and the native conv per backend ({kernel} kernel)"
    parser = commands.add_parser(
        "bench",
        help=summary,
        description=f"Time, per backend and in its own process, the book's loop, our corr2d and the framework's "
        f"own convolution on square float32 N x N images with a {kernel} kernel; medians after a "
        f"warm-up. NumPy's native column is SciPy's correlate2d: {corr2d.BENCH_HINT}.",
        epilog=EXIT_CODES,
    )
    parser.add_argument(
        "--size",
        type=int_at_least(max(KERNEL), f"an integer >= {max(KERNEL)}, the kernel's size"),
        nargs="+",
        default=list(corr2d.DEFAULT_SIZES),
        metavar="N",
        help=f"image sizes N (N x N, at least {max(KERNEL)}) (default: {' '.join(map(str, corr2d.DEFAULT_SIZES))})",
    )
    add_backends_option(parser, "backends to time (default: every installed one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--plot",
        type=plot_path,
        metavar="FILE",
        help="write a log-log plot of time vs size (.png added when FILE has no suffix)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=corr2d.REPEAT,
        metavar="R",
        help=f"samples per median (default: {corr2d.REPEAT})",
    )
    parser.add_argument(
        "--loop-max",
        type=non_negative_int,
        default=corr2d.LOOP_MAX_SIZE,
        metavar="N",
        help=f"largest size for corr2d_loop, which is slow (default: {corr2d.LOOP_MAX_SIZE})",
    )
    add_timeout_option(
        parser,
        None,
        f"{corr2d.DEFAULT_TIMEOUT:g}; with --ops {ops.DEFAULT_TIMEOUT:g}, with --train {train.DEFAULT_TIMEOUT:g}, "
        f"with --port {port.DEFAULT_TIMEOUT:g}",
    )
    parser.add_argument(
        "--ops",
        action="store_true",
        help="time conv2d, conv_transpose2d, max_pool2d and "
        "avg_pool2d, forward and gradient (dc.vjp), against each framework's own call",
    )
    parser.add_argument(
        "--layer",
        type=layer_argument,
        nargs="+",
        metavar="NxCxHxW:O:K:P",
        help=f"with --ops: the layers (default: {' '.join(ops.DEFAULT_LAYERS)})",
    )
    parser.add_argument(
        "--data-format",
        type=data_format_argument,
        nargs="+",
        default=["NCHW"],
        metavar="FORMAT",
        help="with --ops: the data formats, NCHW and/or NHWC (channels_first, channels_last), each a row of its own "
        "(default: NCHW)",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="time a training epoch instead, per network: d2lconv's loop (dc.train) vs the framework's own "
        "idiomatic loop (its data loader and optimizer, Keras fit, a jitted JAX step) on the same data",
    )
    add_net_option(
        parser,
        f"with --train: the networks, of {', '.join(training.NETS)} (default: {' '.join(train.DEFAULT_NETS)})",
        nargs="+",
    )
    parser.add_argument(
        "--epochs",
        type=int_at_least(2, "an integer >= 2 (the first epoch of each run is left out)"),
        default=train.EPOCHS,
        metavar="N",
        help=f"with --train: epochs per run, the first left out (default: {train.EPOCHS})",
    )
    parser.add_argument("--lenet", action="store_true", help="time LeNet's training per epoch: --train --net lenet")
    parser.add_argument(
        "--port",
        action="store_true",
        help="time ported networks instead: Paddle's MobileNetV2 ported to Keras and Keras's to Paddle and Gluon, "
        "each against the framework's own (batch 8 and 1), and port() on ResNet-50",
    )
    parser.set_defaults(run=bench_command)
