"""Outputs of a design-space sweep: ``sweep.csv``, ``sweep.json`` and a latency-energy Pareto plot."""

from __future__ import annotations

import io
from pathlib import Path

from hwsim.atomic_io import write_bytes_atomic, write_json_atomic, write_text_atomic


def pareto_figure(frame, title: str) -> bytes:
    """Scatter of latency (µs) vs energy (µJ) per point; the Pareto front is highlighted and labelled."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    energy_uj = frame["energy_total_pj"] * 1e-6
    ax.scatter(frame["latency_us"], energy_uj, s=18, color="0.6", label="design points")
    front = frame[frame["pareto"]].sort_values("latency_us")
    ax.plot(front["latency_us"], front["energy_total_pj"] * 1e-6, "o-", color="tab:red", label="Pareto front")
    for _, row in front.iterrows():
        ax.annotate(str(int(row["point"])), (row["latency_us"], row["energy_total_pj"] * 1e-6), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("energy (µJ)")
    ax.set_title(title)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def write_sweep(frame, out_dir, name: str) -> dict[str, Path]:
    """Write the sweep table (CSV + JSON records) and the Pareto plot atomically into ``out_dir``."""
    out = Path(out_dir)
    return {
        "sweep.csv": write_text_atomic(out / "sweep.csv", frame.to_csv(index=False)),
        "sweep.json": write_json_atomic(out / "sweep.json", frame.to_dict(orient="records")),
        "pareto.png": write_bytes_atomic(out / "pareto.png", pareto_figure(frame, f"{name}: latency vs energy")),
    }
