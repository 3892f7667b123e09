"""`reward-obs bench` (scale benchmark): registered once implemented."""


def register(sub) -> None:
    pass
