"""The bug zoo: the mistakes people keep making in VAE code, and which tests catch each one.

    python demos/10_bug_zoo.py            # 10-20 s per bug on 2 idle cores (the default runs of docs/zoo.md)
    python demos/10_bug_zoo.py --quick    # seconds per bug: a tiny training, every figure written

The same as `scratchvae zoo BUG` for every BUG. Each bug is a deliberate one-line mistake in the
VAE objective or in the log-likelihood estimate (scratchvae/zoo/pieces.py). For each, the
gradient check and the meaning tests run on a tiny float64 model; then the buggy and the
correct MLP VAE train the same way (same seed, data, order) and are compared.

What to look for (tables printed, figures in --out, default runs/demo-10):
    gradient check     passes for every bug: each wrong forward has a consistent backward
    meaning tests      catch the bugs whose meaning they test, and only those
    zoo-pixel-mean     samples all alike: the KL drowned the reconstruction (posterior collapse)
    zoo-kl-dim-mean    the loss reports a KL of a few nats; evaluation.py measures tens
    zoo-bce-unclamped  no samples to blame: the run stops on a NaN
    zoo-iwae-mean-log  the right estimate falls with K, the wrong one stays at the -ELBO
    zoo-vamp-unbounded  the pseudo-inputs' pixels spill out of [0, 1] on both sides; the library's stay inside
"""
# %%
from _common import parse_args
from scratchvae.commands.zoo import format_table
from scratchvae.zoo import BUGS, Settings, run_bug
from scratchvae.zoo.figures import save_zoo_figure

args = parse_args(__doc__, "demo-10")
# --quick: even smaller than `scratchvae zoo --quick`, so each bug fits in seconds
settings = Settings.quick(train_size=500, epochs=1, n_test=100, k=10, k_curve=(1, 3, 10), seed=args.seed,
                          progress=False) if args.quick else Settings(seed=args.seed, progress=False)

# %% Every bug: its wrong line, the table of detectors, its figure
for name, bug in BUGS.items():
    print(f"\n== {name}: {bug.summary}\n   wrong: {bug.wrong}\n   right: {bug.right}")
    run = run_bug(bug, settings)
    print(format_table(run.verdicts))
    save_zoo_figure(run, args.out / f"zoo-{name}.png")
print("\nwrote", ", ".join(p.name for p in sorted(args.out.glob("zoo-*.png"))))
