"""Outlook through devtenant's Graph: calendarView, messages, contacts and the mailbox throttle."""

from __future__ import annotations

import asyncio

import pytest

from tests.devtenant.graph_support import app_token, call, make_state, sdk_client, serve_graph
from tests.devtenant.tiny_org import ALAN, GRACE, KATHERINE

# msgraph's generated request builders (and kiota under them) warn about their own deprecated classes.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]

WEEK = {"startDateTime": "2026-11-22T00:00:00Z", "endDateTime": "2026-11-29T00:00:00Z"}


def subjects(resp) -> list[str]:
    return [e["subject"] for e in resp.body["value"]]


# --- calendarView ---------------------------------------------------------------------------------
async def test_calendar_view_returns_meetings_in_the_window_in_graphs_shape():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView", WEEK)
    assert resp.status == 200
    assert subjects(resp) == ["Canceled: Design review", "Alan / Grace 1:1", "Compilers standup", "Doctor"]
    one_on_one = resp.body["value"][1]
    assert one_on_one["start"] == {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"}
    assert one_on_one["end"] == {"dateTime": "2026-11-24T10:30:00.0000000", "timeZone": "UTC"}
    assert one_on_one["organizer"] == {"emailAddress": {"name": "Grace Hopper",
                                                        "address": "grace.hopper@tiny.example"}}
    assert one_on_one["attendees"] == [{
        "type": "required",
        "status": {"response": "accepted", "time": one_on_one["attendees"][0]["status"]["time"]},
        "emailAddress": {"name": "Alan Turing", "address": "alan.turing@tiny.example"},
    }]
    assert one_on_one["responseStatus"]["response"] == "accepted"
    assert one_on_one["isOrganizer"] is False and one_on_one["isCancelled"] is False
    assert one_on_one["sensitivity"] == "normal" and one_on_one["type"] == "singleInstance"


async def test_calendar_view_only_returns_events_overlapping_the_window():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView",
                      {"startDateTime": "2026-11-24T10:15:00", "endDateTime": "2026-11-24T11:05:00"})
    assert subjects(resp) == ["Alan / Grace 1:1", "Compilers standup"]


@pytest.mark.parametrize("query", [{}, {"startDateTime": "2026-11-22T00:00:00Z"},
                                   {"endDateTime": "2026-11-29T00:00:00Z"}])
async def test_calendar_view_without_both_bounds_is_400(query):
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView", query)
    assert resp.status == 400
    assert resp.body["error"]["code"] == "ErrorInvalidParameter"
    assert resp.body["error"]["message"] == ("This request requires a time window specified by the query "
                                             "string parameters StartDateTime and EndDateTime.")


async def test_calendar_view_refuses_a_filter_on_dates():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView",
                      {**WEEK, "$filter": "start/dateTime ge '2026-11-24T00:00:00'"})
    assert resp.status == 400


async def test_calendar_view_filters_on_other_properties():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView", {**WEEK, "$filter": "isCancelled eq false"})
    assert "Canceled: Design review" not in subjects(resp) and len(subjects(resp)) == 3


async def test_cancelled_meeting_stays_for_attendees_and_leaves_the_organizers_calendar():
    state = make_state()
    alan = await call(state, "GET", f"/users/{ALAN}/calendarView", WEEK)
    cancelled = next(e for e in alan.body["value"] if e["isCancelled"])
    assert cancelled["subject"] == "Canceled: Design review"
    katherine = await call(state, "GET", f"/users/{KATHERINE}/calendarView", WEEK)
    assert not any("Design review" in s for s in subjects(katherine))


async def test_private_event_keeps_its_subject_for_the_app_and_says_private():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView",
                      {**WEEK, "$select": "subject,sensitivity"})
    doctor = next(e for e in resp.body["value"] if e["subject"] == "Doctor")
    assert doctor["sensitivity"] == "private"
    assert set(doctor) == {"@odata.etag", "id", "subject", "sensitivity"}  # Outlook always adds the id


async def test_each_mailbox_has_its_own_copy_of_a_meeting():
    state = make_state()
    select = {**WEEK, "$select": "subject,iCalUId,attendees,responseStatus"}
    grace = next(e for e in (await call(state, "GET", f"/users/{GRACE}/calendarView", select)).body["value"]
                 if e["subject"] == "Compilers standup")
    alan = next(e for e in (await call(state, "GET", f"/users/{ALAN}/calendarView", select)).body["value"]
                if e["subject"] == "Compilers standup")
    assert grace["id"] != alan["id"] and grace["iCalUId"] == alan["iCalUId"]
    assert grace["responseStatus"]["response"] == "organizer"
    assert [a["status"]["response"] for a in grace["attendees"]] == ["accepted", "accepted"]
    # An attendee's copy knows only the attendee's own answer.
    assert {a["emailAddress"]["name"]: a["status"]["response"] for a in alan["attendees"]} == {
        "Alan Turing": "accepted", "Katherine Johnson": "none"}


async def test_outlook_timezone_preference_converts_event_times():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView", {**WEEK, "$select": "subject,start"},
                      headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    one_on_one = next(e for e in resp.body["value"] if e["subject"] == "Alan / Grace 1:1")
    assert one_on_one["start"] == {"dateTime": "2026-11-24T02:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert resp.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'


async def test_calendar_view_pages_with_top_and_orders_by_start_descending():
    state = make_state()
    first = await call(state, "GET", f"/users/{ALAN}/calendarView",
                       {**WEEK, "$top": "3", "$orderby": "start/dateTime desc", "$select": "subject"})
    assert subjects(first) == ["Doctor", "Compilers standup", "Alan / Grace 1:1"]
    assert "$skip=3" in first.body["@odata.nextLink"]
    second = await call(state, "GET", f"/users/{ALAN}/calendarView",
                        {**WEEK, "$top": "3", "$orderby": "start/dateTime desc", "$select": "subject", "$skip": "3"})
    assert subjects(second) == ["Canceled: Design review"] and "@odata.nextLink" not in second.body


async def test_calendar_view_without_calendars_read_is_403_access_denied():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/calendarView", WEEK, roles=["User.Read.All"])
    assert resp.status == 403 and resp.body["error"]["code"] == "ErrorAccessDenied"


async def test_calendar_view_of_an_unknown_user_is_404_invalid_user():
    resp = await call(make_state(), "GET", "/users/nobody@tiny.example/calendarView", WEEK)
    assert resp.status == 404 and resp.body["error"]["code"] == "ErrorInvalidUser"


# --- messages -------------------------------------------------------------------------------------
async def test_messages_come_newest_first_without_bodies_under_mail_readbasic():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/messages", roles=["Mail.ReadBasic.All"])
    assert resp.status == 200
    newest, older = resp.body["value"]
    assert (newest["subject"], older["subject"]) == ("Quarterly goals", "This week in tech")
    assert newest["from"] == {"emailAddress": {"name": "Grace Hopper", "address": "grace.hopper@tiny.example"}}
    assert newest["toRecipients"] == [{"emailAddress": {"name": "Alan Turing",
                                                        "address": "alan.turing@tiny.example"}}]
    assert newest["receivedDateTime"] == "2026-11-25T16:00:00Z"
    assert {"sentDateTime", "isRead", "importance", "hasAttachments", "inferenceClassification",
            "sender", "ccRecipients"} <= set(newest)
    assert "body" not in newest and "bodyPreview" not in newest


async def test_messages_with_mail_read_include_the_body():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/messages", {"$select": "subject,body"},
                      roles=["Mail.Read"])
    assert resp.status == 200 and "body" in resp.body["value"][0]


@pytest.mark.parametrize("query", [{"$select": "subject,body"}, {"$select": "bodyPreview"},
                                   {"$search": '"goals"'}])
async def test_body_or_search_with_only_mail_readbasic_is_403(query):
    resp = await call(make_state(), "GET", f"/users/{ALAN}/messages", query, roles=["Mail.ReadBasic.All"])
    assert resp.status == 403 and resp.body["error"]["code"] == "ErrorAccessDenied"


async def test_messages_filter_on_received_date_with_the_products_query():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/messages", {
        "$select": "from,toRecipients,subject,receivedDateTime", "$orderby": "receivedDateTime desc",
        "$filter": "receivedDateTime ge 2026-11-24T00:00:00Z"}, roles=["Mail.ReadBasic.All"])
    assert resp.status == 200
    assert [m["subject"] for m in resp.body["value"]] == ["Quarterly goals"]
    assert set(resp.body["value"][0]) == {"@odata.etag", "id", "from", "toRecipients", "subject",
                                          "receivedDateTime"}


async def test_orderby_that_does_not_lead_the_filter_is_inefficient_filter():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/messages", {
        "$orderby": "receivedDateTime desc", "$filter": "isRead eq false"}, roles=["Mail.ReadBasic.All"])
    assert resp.status == 400 and resp.body["error"]["code"] == "InefficientFilter"


async def test_messages_without_a_mail_permission_is_403():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/messages", roles=["Calendars.Read"])
    assert resp.status == 403


# --- contacts -------------------------------------------------------------------------------------
async def test_contacts_list_names_addresses_and_no_starred_flag():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/contacts", {"$orderby": "displayName"},
                      roles=["Contacts.Read"])
    assert resp.status == 200
    joan, katherine = resp.body["value"]
    assert joan["displayName"] == "Joan Clarke" and joan["companyName"] == "Bletchley"
    assert joan["emailAddresses"] == [{"name": "Joan Clarke", "address": "joan@bletchley.example"}]
    assert katherine["jobTitle"] == "Software Engineer" and katherine["createdDateTime"].endswith("Z")
    assert not any("star" in key.lower() or "favo" in key.lower() for key in joan)


async def test_contacts_default_page_is_ten_and_top_is_capped_at_1000():
    state = make_state()
    resp = await call(state, "GET", f"/users/{ALAN}/contacts", {"$top": "1"}, roles=["Contacts.Read"])
    assert len(resp.body["value"]) == 1 and "@odata.nextLink" in resp.body
    resp = await call(state, "GET", f"/users/{ALAN}/contacts", {"$top": "1001"}, roles=["Contacts.Read"])
    assert resp.status == 400


async def test_contacts_without_contacts_read_is_403():
    resp = await call(make_state(), "GET", f"/users/{ALAN}/contacts", roles=["Mail.Read"])
    assert resp.status == 403 and resp.body["error"]["code"] == "ErrorAccessDenied"


# --- the Outlook concurrency limit ----------------------------------------------------------------
async def test_fifth_concurrent_request_on_one_mailbox_is_429_application_throttled():
    state = make_state(mailbox_latency_ms=50)  # a mailbox that takes a moment to answer
    paths = [f"/users/{ALAN}/calendarView", f"/users/{ALAN}/messages", f"/users/{ALAN}/contacts",
             f"/users/{ALAN}/messages", f"/users/{ALAN}/calendarView"]
    results = await asyncio.gather(*(call(state, "GET", p, WEEK if "calendar" in p else {}) for p in paths))
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 200, 200, 200, 429]
    refused = next(r for r in results if r.status == 429)
    assert refused.body["error"]["code"] == "ApplicationThrottled"
    assert refused.body["error"]["message"] == "Application is over its MailboxConcurrency limit."
    assert int(refused.headers["Retry-After"]) >= 1
    # Slots free when requests finish; another mailbox was never affected.
    assert (await call(state, "GET", f"/users/{ALAN}/contacts")).status == 200


async def test_concurrency_limit_is_per_mailbox():
    state = make_state(mailbox_latency_ms=50)
    users = [ALAN, ALAN, ALAN, ALAN, GRACE, KATHERINE]
    results = await asyncio.gather(*(call(state, "GET", f"/users/{u}/calendarView", WEEK) for u in users))
    assert [r.status for r in results] == [200] * 6


# --- contract: the product's SDK parses these answers ---------------------------------------------------
async def test_sdk_reads_a_calendar_view_with_its_time_window(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.response_type import ResponseType
    from msgraph.generated.models.sensitivity import Sensitivity
    from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import (
        CalendarViewRequestBuilder,
    )

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state))
    query = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
        start_date_time="2026-11-22T00:00:00Z", end_date_time="2026-11-29T00:00:00Z",
        select=["subject", "organizer", "attendees", "start", "end", "sensitivity", "isCancelled"], top=50)
    page = await client.users.by_user_id(ALAN).calendar_view.get(RequestConfiguration(query_parameters=query))
    by_subject = {e.subject: e for e in page.value}
    one_on_one = by_subject["Alan / Grace 1:1"]
    assert one_on_one.start.date_time == "2026-11-24T10:00:00.0000000" and one_on_one.start.time_zone == "UTC"
    assert one_on_one.organizer.email_address.address == "grace.hopper@tiny.example"
    assert one_on_one.attendees[0].email_address.name == "Alan Turing"
    assert one_on_one.attendees[0].status.response is ResponseType.Accepted
    assert by_subject["Doctor"].sensitivity is Sensitivity.Private
    assert by_subject["Canceled: Design review"].is_cancelled is True


async def test_sdk_reads_message_metadata_and_contacts(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state))
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        select=["from", "toRecipients", "subject", "receivedDateTime"], orderby=["receivedDateTime desc"],
        filter="receivedDateTime ge 2026-11-01T00:00:00Z", top=100)
    messages = await client.users.by_user_id(ALAN).messages.get(RequestConfiguration(query_parameters=query))
    newest = messages.value[0]
    assert newest.subject == "Quarterly goals"
    assert newest.from_.email_address.address == "grace.hopper@tiny.example"
    assert newest.to_recipients[0].email_address.name == "Alan Turing"
    assert newest.received_date_time.isoformat() == "2026-11-25T16:00:00+00:00"
    contacts = await client.users.by_user_id(ALAN).contacts.get()
    assert {c.display_name for c in contacts.value} == {"Katherine Johnson", "Joan Clarke"}
    joan = next(c for c in contacts.value if c.display_name == "Joan Clarke")
    assert joan.email_addresses[0].address == "joan@bletchley.example" and joan.company_name == "Bletchley"


async def test_sdk_sees_calendar_view_without_bounds_as_odata_error_400(aiohttp_client):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state))
    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(ALAN).calendar_view.get()
    assert raised.value.response_status_code == 400
    assert raised.value.error.code == "ErrorInvalidParameter"


async def test_a_batch_of_five_requests_on_one_mailbox_gets_one_429(aiohttp_client):
    import aiohttp

    state = make_state()
    base = await serve_graph(aiohttp_client, state)
    window = "startDateTime=2026-11-22T00:00:00Z&endDateTime=2026-11-29T00:00:00Z"
    requests = [{"id": str(i), "method": "GET", "url": f"/users/{ALAN}/calendarView?{window}"} for i in range(1, 6)]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/$batch", json={"requests": requests},
                                headers={"Authorization": f"Bearer {app_token(state)}"}) as resp:
            answers = (await resp.json())["responses"]
    assert sorted(a["status"] for a in answers) == [200, 200, 200, 200, 429]
    throttled = next(a for a in answers if a["status"] == 429)
    assert throttled["body"]["error"]["code"] == "ApplicationThrottled"
