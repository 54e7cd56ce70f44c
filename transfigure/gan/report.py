"""The views of a GAN run that its loss alone cannot give: loss curves (with the Wasserstein
estimate and the gradient penalty for critics) and the fixed-latent grid over the epochs."""

from __future__ import annotations

from pathlib import Path

from transfigure.plots import plot_metrics, progress_gif, read_metrics

__all__ = ["plot_losses", "progress_gif", "read_metrics"]

GAN_PANELS = (
    ("loss", (("loss_d", "D loss"), ("loss_g", "G loss"))),
    ("critic", (("wasserstein", "Wasserstein estimate"), ("gp", "gradient penalty"))),
)


def plot_losses(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Plot D and G losses (and, for WGAN-GP, the Wasserstein estimate and the penalty).

    Returns:
        ``out_path``, or ``None`` if there was nothing to plot yet.
    """
    return plot_metrics(metrics_path, out_path, GAN_PANELS)
