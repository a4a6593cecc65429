"""What the table writers of benches/compare.sh (compare_*.py) share."""


def get(report, *path):
    """report[path[0]][path[1]]..., or None where a level is missing."""
    for key in path:
        if report is None:
            return None
        report = report.get(key)
    return report


def rate(v, missing="n/a"):
    """A rate with thousands separators."""
    return missing if v is None else f"{v:,.0f}"
