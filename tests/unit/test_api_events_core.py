"""The event hub without IO (rx.api.events.core, wire, formatted): ids, the replay window and its gap
notice, the tag filter, who sees which job's events, a client that never reads dropped without slowing
the others, and the frames as salt-api writes them."""

from __future__ import annotations

import json

import pytest

from rx.api.events import wire
from rx.api.events.core import BUS_TAG, GAP_TAG, Access, HubCore
from rx.api.events.formatted import FormattedView

ROOT = Access(all_jobs=True, owner="root")
BOB = Access(all_jobs=False, owner="file:bob")
T0 = 1767225600.0


class Sink:
    """A client's callbacks, counted."""

    def __init__(self) -> None:
        self.notified = 0
        self.hung_up = 0

    def notify(self) -> None:
        self.notified += 1

    def hangup(self) -> None:
        self.hung_up += 1


def hub(**kw) -> HubCore:
    h = HubCore(first_id=1000, **kw)
    h.bus_up = True
    return h


def attach(h: HubCore, access: Access = ROOT, prefixes=(), last_id=None):
    sink = Sink()
    client, first = h.attach(access, list(prefixes), last_id, sink.notify, sink.hangup, now=T0)
    return client, first, sink


def custom(n: int, prefix: str = "app/e") -> list[tuple[str, dict]]:
    return [(f"{prefix}/{i}", {"i": i}) for i in range(n)]


def job(jid: str, user: str, minions=("m1",)) -> list[tuple[str, dict]]:
    new = (f"rx/job/{jid}/new", {"jid": jid, "fun": "test.ping", "arg": [], "kwarg": {}, "tgt": "*", "tgt_type": "glob",
                                 "ts": T0, "user": user, "delimiter": ":", "minions": list(minions)})
    rets = [(f"rx/job/{jid}/ret/{m}", {"id": m, "jid": jid, "fun": "test.ping", "fun_args": [], "retcode": 0,
                                       "success": True, "return": True}) for m in minions]
    return [new, *rets]


# ---------------------------------------------------------------- ids and the replay window

def test_ids_increase_by_one_from_the_start():
    h = hub()
    recs = h.ingest(custom(3), T0)
    assert [r.id for r in recs] == [1000, 1001, 1002]
    assert h.notice(BUS_TAG, {"state": "back"}, T0).id == 1003
    assert h.newest_id == 1003


def test_default_ids_come_from_the_clock_so_a_restarted_api_issues_higher_ones():
    first = HubCore()
    first.ingest(custom(10), T0)
    assert HubCore().next_id > first.newest_id


@pytest.mark.parametrize("last_offset,expect", [(0, [1, 2, 3, 4]), (2, [3, 4]), (4, []), (-1, [0, 1, 2, 3, 4])])
def test_resume_in_the_window_gets_exactly_what_was_missed(last_offset, expect):
    h = hub(replay=100)
    recs = h.ingest(custom(5), T0)
    _, first, _ = attach(h, last_id=recs[0].id + last_offset)
    assert [r.data["i"] for r in first] == expect
    assert all(r.tag != GAP_TAG for r in first)


def test_resume_before_the_window_gets_a_gap_notice_then_what_is_kept():
    h = hub(replay=3)
    recs = h.ingest(custom(10), T0)
    _, first, _ = attach(h, last_id=recs[2].id)
    assert first[0].tag == GAP_TAG and first[0].id is None
    assert first[0].data["last_event_id"] == recs[2].id and first[0].data["oldest"] == recs[7].id
    assert [r.data["i"] for r in first[1:]] == [7, 8, 9]


@pytest.mark.parametrize("last", [10**9, 999_999_999_999])
def test_an_id_this_api_never_sent_is_a_gap(last):
    h = hub(replay=3)
    h.ingest(custom(2), T0)
    _, first, _ = attach(h, last_id=h.newest_id + last)
    assert first[0].tag == GAP_TAG and len(first) == 3


def test_no_replay_window_means_a_gap_for_any_old_id():
    h = hub(replay=0)
    recs = h.ingest(custom(3), T0)
    assert attach(h, last_id=recs[-1].id)[1] == []
    assert [r.tag for r in attach(h, last_id=recs[0].id)[1]] == [GAP_TAG]


def test_the_window_is_bounded_in_bytes_too():
    h = hub(replay=1000, ring_bytes=10_000)
    h.ingest([("big", {"x": "y" * 3000})] * 10, T0)
    assert len(h.ring) == 3 and h.ring_bytes <= 10_000


def test_a_client_attached_while_the_bus_is_down_is_told():
    h = hub()
    h.bus_up = False
    _, first, _ = attach(h)
    assert [r.tag for r in first] == [BUS_TAG] and first[0].data["state"] == "down"


# ---------------------------------------------------------------- live delivery, filter, drop

def test_live_events_are_queued_and_notify_once_per_wake():
    h = hub()
    client, _, sink = attach(h)
    h.ingest(custom(3), T0)
    assert sink.notified == 1
    assert [r.data["i"] for r in client.take()] == [0, 1, 2]
    h.ingest(custom(1), T0)
    assert sink.notified == 2 and client.delivered == 3


def test_tag_prefixes_filter_but_notices_always_pass():
    h = hub()
    client, _, _ = attach(h, prefixes=["app/a/", "rx/job/"])
    h.ingest(custom(2, "app/a") + custom(2, "app/b") + job("1", "root"), T0)
    h.notice(BUS_TAG, {"state": "lost"}, T0)
    assert [r.tag for r in client.take()] == ["app/a/0", "app/a/1", "rx/job/1/new", "rx/job/1/ret/m1", BUS_TAG]


def test_a_client_that_never_reads_is_dropped_once_and_the_others_get_everything():
    h = hub(client_queue=10)
    slow, _, slow_sink = attach(h)
    reader, _, reader_sink = attach(h)
    got = []
    for _ in range(5):
        h.ingest(custom(8), T0)
        got += reader.take()
    assert len(got) == 40 and reader_sink.hung_up == 0
    assert slow.dropped and slow_sink.hung_up == 1 and not slow.queue
    assert h.stats()["dropped_clients"] == 1 and h.clients == (reader,)


def test_a_client_is_dropped_by_bytes_too():
    h = hub(client_queue=1000, client_bytes=5000)
    slow, _, sink = attach(h)
    h.ingest([("big", {"x": "y" * 2000})] * 3, T0)
    assert slow.dropped and sink.hung_up == 1


def test_streams_are_bounded_in_number():
    from rx.api.events.core import TooManyClients
    h = hub(max_clients=2)
    first, _, _ = attach(h)
    attach(h)
    with pytest.raises(TooManyClients):
        attach(h)
    h.detach(first)
    attach(h)


def test_the_filter_counts_only_what_the_client_gets():
    h = hub(client_queue=10)
    client, _, sink = attach(h, prefixes=["wanted/"])
    h.ingest(custom(100, "other"), T0)
    assert not client.dropped and sink.notified == 0


# ---------------------------------------------------------------- rights

def test_a_user_sees_their_own_jobs_and_what_is_not_a_job():
    h = hub()
    bob, _, _ = attach(h, BOB)
    root, _, _ = attach(h, ROOT)
    h.ingest(job("1", "root", ["m1", "m2"]) + job("2", "file:bob") + custom(1) + [("rx/key", {"id": "m3"})], T0)
    assert [r.tag for r in bob.take()] == ["rx/job/2/new", "rx/job/2/ret/m1", "app/e/0", "rx/key"]
    assert len(root.take()) == 7


def test_a_return_of_a_job_the_hub_did_not_see_published_is_not_shown_to_a_user():
    h = hub()
    bob, _, _ = attach(h, BOB)
    h.ingest(job("1", "file:bob")[1:], T0)
    assert bob.take() == []


def test_a_minion_named_new_does_not_set_a_jobs_owner():
    h = hub()
    bob, _, _ = attach(h, BOB)
    h.ingest(job("1", "root", ["new"]) + [("rx/job/1/ret/new", {"id": "new", "user": "file:bob"})], T0)
    assert bob.take() == []


def test_replay_applies_the_same_rights():
    h = hub()
    h.ingest(job("1", "root") + job("2", "file:bob"), T0)
    _, first, _ = attach(h, BOB, last_id=999)
    assert [r.tag for r in first] == ["rx/job/2/new", "rx/job/2/ret/m1"]


def test_a_user_named_like_root_in_another_back_end_does_not_own_roots_jobs():
    h = hub()
    client, _, _ = attach(h, Access(False, "file:root"))
    h.ingest(job("1", "root"), T0)
    assert client.take() == []


# ---------------------------------------------------------------- Salt's tags

def test_salt_tags_are_presented_and_filtered_on_while_rights_use_rxs_tags():
    h = hub(salt_tags=True)
    bob, _, _ = attach(h, BOB, prefixes=["salt/job/"])
    h.ingest(job("1", "root") + job("2", "file:bob") + [("rx/key", {"id": "m1", "act": "accept"})], T0)
    recs = bob.take()
    assert [r.tag for r in recs] == ["salt/job/2/new", "salt/job/2/ret/m1"]
    assert recs[1].data["cmd"] == "_return" and "_stamp" in recs[1].data
    assert json.loads(recs[0].blob) == {"tag": "salt/job/2/new", "data": recs[0].data}


# ---------------------------------------------------------------- frames

def test_sse_frame_is_salt_apis_with_an_id():
    h = hub()
    rec = h.ingest([("rx/job/1/new", {"minions": ["m1"]})], T0)[0]
    assert rec.sse == (b'id: 1000\ntag: rx/job/1/new\n'
                       b'data: {"tag": "rx/job/1/new", "data": {"minions": ["m1"]}}\n\n')


def test_a_tag_cannot_inject_a_field_and_data_is_one_line():
    frame = wire.sse_frame(1, "evil\nid: 99\r\nx", wire.event_json("t", {"s": "a\nb\u2028c"}))
    lines = frame.decode().split("\n")
    assert lines[0] == "id: 1" and lines[1].startswith("tag: evil\\nid: 99") and len(lines) == 5


def test_ws_message_is_salt_apis_data_line_with_the_id_inside():
    msg = wire.ws_message(7, wire.event_json("t", {"a": 1}))
    assert msg.startswith("data: ") and msg.endswith("\n\n")
    assert json.loads(msg[len("data: "):]) == {"tag": "t", "data": {"a": 1}, "id": 7}
    assert json.loads(wire.ws_message(None, wire.event_json("t", {}))[6:]) == {"tag": "t", "data": {}}


def test_json_takes_what_msgpack_may_carry():
    assert json.loads(wire.event_json("t", {"b": b"\xffok", "t": (1, 2)})) == {"tag": "t", "data": {"b": "\ufffdok",
                                                                                                "t": [1, 2]}}
    odd = {b"k": 1, 2: [float("nan"), {(1, 2): float("inf")}], None: True}
    assert json.loads(wire.event_json("t", odd)) == {"tag": "t", "data": {"k": 1, "2": ["nan", {"(1, 2)": "inf"}],
                                                                         "None": True}}


def test_an_event_json_cannot_carry_does_not_stop_the_hub():
    h = hub()
    client, _, _ = attach(h)
    h.ingest([("odd", {b"k": float("nan")}), ("next", {})], T0)
    assert [r.tag for r in client.take()] == ["odd", "next"]


# ---------------------------------------------------------------- format_events

def test_formatted_view_follows_jobs_to_complete():
    view = FormattedView()
    new = ("salt/job/1/new", {"jid": "1", "fun": "test.ping", "tgt": "*", "tgt_type": "glob", "minions": ["m1", "m2"],
                              "_stamp": "s"})
    ret = ("salt/job/1/ret/{}", {"return": True, "retcode": 0, "success": True})
    [msg] = view.update([new])
    assert msg["jobs"]["1"]["state"] == "running" and msg["jobs"]["1"]["minions"]["m1"] == {"success": False}
    [msg] = view.update([(ret[0].format("m1"), ret[1])])
    assert msg["jobs"]["1"]["state"] == "running"
    [msg] = view.update([(ret[0].format("m2"), ret[1])])
    assert msg["jobs"]["1"]["state"] == "complete" and msg["jobs"]["1"]["start_time"] == "s"


def test_formatted_view_minions_from_keys_and_grains_items():
    view = FormattedView()
    assert view.update([("salt/key", {"id": "m1", "act": "accept"})]) == [{"minions": [{"id": "m1"}]}]
    msgs = view.update([("salt/job/2/new", {"jid": "2", "fun": "grains.items", "minions": ["m1"]}),
                        ("salt/job/2/ret/m1", {"fun": "grains.items", "return": {"os": "Debian"}, "success": True})])
    assert msgs[-1] == {"minions": [{"grains": {"os": "Debian"}, "id": "m1"}]}
    assert view.update([("salt/key", {"id": "m1", "act": "delete"})]) == [{"minions": []}]
    assert view.update([("other", {})]) == []


def test_formatted_view_keeps_a_bounded_number_of_jobs():
    view = FormattedView(max_jobs=3)
    for i in range(10):
        view.update([(f"salt/job/{i}/new", {"jid": str(i), "minions": []})])
    assert list(view.jobs) == ["7", "8", "9"]


@pytest.mark.parametrize("uri,shown", [
    ("/events?token=abc&tag=x", "/events?token=***&tag=x"),
    ("/events?tag=x&salt_token=abc", "/events?tag=x&salt_token=***"),
    ("/ws/abc-def_1", "/ws/***"),
    ("/ws/abc?format_events", "/ws/***?format_events"),
    ("/events?tag=rx/token=1", "/events?tag=rx/token=1"),
    ("/ws?tag=a", "/ws?tag=a"),
])
def test_tokens_are_kept_out_of_access_logs(uri, shown):
    from rx.api.events.handlers import redact_uri
    assert redact_uri(uri) == shown
