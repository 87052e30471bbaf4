"""Stage `report`: comparison table from the registry, then the self-contained reports/index.html."""

from brainlike.cli import run_stage
from brainlike.registry import compare_main
from brainlike.report.stage import report_main


def main() -> None:
    compare_main(["--params", "params.yaml"])
    report_main()


if __name__ == "__main__":
    run_stage(main)
