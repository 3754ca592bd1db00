from faust.streams import current_event

from app.event_context import acting_as


class FakeEvent:
    def __init__(self, name: str) -> None:
        self.name = name


def test_acting_as_sets_and_restores_fausts_current_event():
    outer, inner = FakeEvent("outer"), FakeEvent("inner")
    assert current_event() is None
    with acting_as(outer):
        assert current_event() is outer
        with acting_as(inner):
            assert current_event() is inner
        assert current_event() is outer
    assert current_event() is None
