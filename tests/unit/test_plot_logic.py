"""files/plot.py's figure in process: the assignment's labels, ticks and bars. Its PNGs from
real partition files: tests/test_plot.py."""

import importlib.util

from tools.harness import FILES

ASSIGNMENT_LABELS = ("Year", "Avg. Max Temperature for {}", "Avg. Max Temperatures per year")


def load_plot_module():
    spec = importlib.util.spec_from_file_location("p7_plot", FILES / "plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_labels_are_the_assignments():
    plot = load_plot_module()
    xlabel, ylabel, title = ASSIGNMENT_LABELS
    for month in ("January", "March"):
        fig = plot.draw([(1990, 20.0), (1991, 25.5), (1992, 18.0)], month)
        try:
            (ax,) = fig.axes
            assert ax.get_xlabel() == xlabel
            assert ax.get_ylabel() == ylabel.format(month)
            assert ax.get_title() == title
            ticks = ax.get_xticklabels()
            assert [t.get_text() for t in ticks] == ["1990", "1991", "1992"]
            assert all(t.get_rotation() == 90 for t in ticks)
            assert len(ax.patches) == 3
        finally:
            plot.plt.close(fig)
