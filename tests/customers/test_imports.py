"""An administrator imports a spreadsheet: nothing is written before the
preview is confirmed, bad rows never block good ones, every change is in the
history, a re-import changes nothing, and an import can be undone."""

import codecs
import datetime
import io
import json
import zipfile
from pathlib import Path

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from cim.audit import system_actor
from customers import services
from customers.imports import pipeline
from customers.imports.mapping import auto_map
from customers.imports.services import (
    import_job_create,
    import_job_resume,
    import_job_revert_request,
    import_job_revert_run,
    import_job_run,
)
from customers.models import (
    Customer,
    EmailAddress,
    ImportChunk,
    ImportJob,
    ImportMapping,
    SourceIdentifier,
)

pytestmark = pytest.mark.django_db

HEADER = "external_id,first_name,last_name,email,phone,date_of_birth,country,city,street,postcode"
GOOD = [
    "C-1,Ann,Lee,Ann.Lee@Example.COM,020 7946 0958,1985-04-12,GB,London,1 High St,sw1a 1aa",
    "C-2,Bob,Stone,bob@example.com,+44 20 7946 0959,1979-01-30,GB,Leeds,2 Low Rd,LS1 1AA",
    "C-3,Chloé,Dupont,chloe@example.fr,01 42 68 53 00,1990-07-01,FR,Paris,3 rue X,75001",
]


def write(tmp_path, text: str, name="customers.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def run_import(path, *args, source="crm") -> dict:
    out = io.StringIO()
    call_command(
        "import_customers", str(path), "--source", source, *args, stdout=out, stderr=io.StringIO()
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


def revert(actor, job: ImportJob) -> dict:
    """The actor asks for the undo, and a worker runs it (here, at once)."""
    import_job_revert_request(actor=actor, job=job)
    return import_job_revert_run(job_id=job.pk)


def test_a_file_creates_customers_with_normalised_contact_points(tmp_path):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    assert (summary["created"], summary["updated"], summary["errors"]) == (3, 0, 0)
    # Counted before the run, so its progress has an end (and an ETA).
    assert ImportJob.objects.get().rows_total == 3
    ann = SourceIdentifier.objects.get(source="crm", external_id="C-1").customer
    assert ann.display_name == "Ann Lee"
    assert ann.emails.get().email == "Ann.Lee@example.com"
    assert ann.phones.get().number == "+442079460958"
    assert ann.addresses.get().postcode == "SW1A 1AA"
    chloe = SourceIdentifier.objects.get(external_id="C-3").customer
    assert chloe.phones.get().number == "+33142685300"  # read in the row's country


def test_imported_customers_are_found_by_name_and_by_sound(tmp_path, staff):
    from customers.selectors import customer_search

    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))

    def found(query):
        return [hit.customer.display_name for hit in customer_search(user=staff, query=query).hits]

    assert found("Chloé Dupont") == ["Chloé Dupont"]
    assert found("stoan") == ["Bob Stone"]  # sounds alike
    assert found("Ann Lea") == ["Ann Lee"]


def test_history_rows_reconcile_with_the_counts_and_name_the_job(tmp_path):
    path = write(tmp_path, "\n".join([HEADER, *GOOD, "C-4,,,,,,,,,"]))
    summary = run_import(path)
    job = ImportJob.objects.get(pk=summary["job"])
    assert summary["rows"] == sum(summary[k] for k in ("created", "updated", "unchanged", "errors"))
    reason = f"import #{job.pk} customers.csv"
    rows = Customer.history.filter(history_change_reason=reason)
    assert rows.count() == summary["created"] + summary["updated"] == 3
    assert {r.history_user for r in rows} == {system_actor()}
    assert EmailAddress.history.filter(history_change_reason=reason).count() == 3


def test_reimporting_the_same_file_changes_nothing(tmp_path):
    path = write(tmp_path, "\n".join([HEADER, *GOOD]))
    run_import(path)
    history_before = Customer.history.count()
    again = run_import(path)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert Customer.history.count() == history_before


def test_a_changed_row_updates_only_what_changed_with_history(tmp_path):
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    changed = GOOD[0].replace("Lee", "Kay").replace("London", "Bath").replace("1 High", "9 New")
    summary = run_import(write(tmp_path, "\n".join([HEADER, changed, *GOOD[1:]]), "v2.csv"))
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 1, 2)
    ann = SourceIdentifier.objects.get(external_id="C-1").customer
    assert ann.last_name == "Kay"
    assert ann.addresses.count() == 2  # the new address is added, the old one kept
    latest = ann.history.latest()
    assert latest.history_change_reason == f"import #{summary['job']} v2.csv"


def test_blank_cells_never_erase_stored_values(tmp_path):
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    summary = run_import(write(tmp_path, "\n".join([HEADER, "C-1,Ann,Lee,,,,,,,"]), "b.csv"))
    assert summary["unchanged"] == 1
    ann = SourceIdentifier.objects.get(external_id="C-1").customer
    assert ann.date_of_birth is not None and ann.emails.exists()


def test_an_edit_made_in_the_app_since_is_not_skipped_by_a_reimport(tmp_path, support):
    path = write(tmp_path, "\n".join([HEADER, *GOOD]))
    run_import(path)
    ann = SourceIdentifier.objects.get(external_id="C-1").customer
    services.customer_update(actor=support, customer=ann, reason="typo", first_name="Anne")
    summary = run_import(path)
    assert summary["updated"] == 1
    ann.refresh_from_db()
    assert ann.first_name == "Ann"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("E-mail", "email"),
        ("Surname", "last_name"),
        ("Forename", "first_name"),
        ("Customer No", "external_id"),
        ("Post Code", "postcode"),
        ("DOB", "date_of_birth"),
        ("Mobile", "phone"),
        ("Company", "organization_name"),
    ],
)
def test_common_header_synonyms_are_mapped(header, field):
    assert auto_map([header]) == {header: field}


def test_only_allow_listed_fields_are_ever_written(tmp_path):
    text = "external_id,last_name,is_staff,restricted,kyc_status\nR-1,Roe,1,true,approved\n"
    path = write(tmp_path, text)
    job = import_job_create(actor=system_actor(), source="crm", original_name="x.csv", path=path)
    assert job.mapping == {
        "external_id": "external_id",
        "last_name": "last_name",
        "is_staff": "",
        "restricted": "",
        "kyc_status": "",
    }
    job.mapping.update(restricted="restricted", is_staff="is_staff")  # a crafted mapping
    job.save()
    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    assert import_job_run(job_id=job.pk)["created"] == 1
    assert Customer.objects.get().restricted is False


def test_a_saved_mapping_is_reused_for_the_same_source(tmp_path, admin, client_for):
    ImportMapping.objects.create(
        source="crm", mapping={"Kundennummer": "external_id", "Name": "last_name"}
    )
    path = write(tmp_path, "Kundennummer,Name\nK-1,Meier\n")
    job = import_job_create(actor=admin, source="crm", original_name="k.csv", path=path)
    assert job.mapping == {"Kundennummer": "external_id", "Name": "last_name"}


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8", ","), ("utf-8-sig", ";"), ("utf-16", "\t"), ("cp1252", ";"), ("latin-1", ",")],
)
def test_encodings_and_delimiters_are_detected(tmp_path, encoding, delimiter):
    text = f"external_id{delimiter}first_name{delimiter}last_name\r\n"
    text += f"E-1{delimiter}José{delimiter}Müller\r\nE-2{delimiter}Zoë{delimiter}Brontë\r\n"
    summary = run_import(write(tmp_path, text, encoding=encoding))
    assert summary["created"] == 2
    assert set(Customer.objects.values_list("display_name", flat=True)) == {
        "José Müller",
        "Zoë Brontë",
    }


# A sheet over CIM_IMPORT_XLSX_IN_MEMORY_MB is streamed rather than loaded whole.
@pytest.fixture(params=["in memory", "streamed"])
def xlsx_reader(request, settings):
    if request.param == "streamed":
        settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    return request.param


def test_xlsx_files_import_with_dates_as_cells(tmp_path, xlsx_reader):
    import datetime

    path = _workbook(
        tmp_path / "people.xlsx",
        [
            ["External ID", "First name", "Last name", "Date of birth", "Phone"],
            ["X-1", "Ida", "Berg", datetime.date(1970, 5, 17), "+46 8 123 456 78"],
            [1002, "Ola", "Nord", "1981-02-03", None],
        ],
    )
    summary = run_import(path)
    assert summary["created"] == 2
    ida = SourceIdentifier.objects.get(external_id="X-1").customer
    assert str(ida.date_of_birth) == "1970-05-17"
    assert SourceIdentifier.objects.filter(external_id="1002").exists()


def test_workbook_rows_of_blank_or_whitespace_cells_are_not_rows(tmp_path, xlsx_reader):
    """Spreadsheets keep formatted or cleared rows as cells of nothing or of
    spaces: no customer, and no rejected row for a missing external_id."""
    path = _workbook(
        tmp_path / "people.xlsx",
        [
            ["External ID", "Last name"],
            ["X-1", "Berg"],
            [None, None],
            ["  ", "\t"],
            [" ", None],
            ["X-2", " Nord "],
        ],
    )
    summary = run_import(path)
    assert (summary["rows"], summary["created"], summary["errors"]) == (2, 2, 0)
    assert sorted(Customer.objects.values_list("last_name", flat=True)) == ["Berg", "Nord"]


def _workbook(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.fixture
def calamine_loads(monkeypatch) -> list[str]:
    """The paths python-calamine loads a workbook from."""
    import python_calamine

    loads, real = [], python_calamine.CalamineWorkbook

    class Counted:
        @staticmethod
        def from_path(path):
            loads.append(path)
            return real.from_path(path)

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", Counted)
    return loads


def test_the_command_loads_a_workbook_once_for_its_check_and_its_run(tmp_path, calamine_loads):
    """import_customers reads the whole file before it writes anything, then
    imports it: the run reads the rows the check copied, and the copy goes
    when the run ends."""
    path = _workbook(
        tmp_path / "people.xlsx",
        [["External ID", "Last name"], ["X-1", "Berg"], ["X-2", "Nord"], ["X-3", "Lind"]],
    )
    summary = run_import(path)
    assert summary["created"] == 3
    assert calamine_loads == [str(path)]
    assert not pipeline.rows_copy_path(ImportJob.objects.get(pk=summary["job"])).exists()


def test_the_run_of_an_upload_reads_the_rows_its_preview_read(
    tmp_path, admin, xlsx_reader, calamine_loads, monkeypatch, settings
):
    """The preview and the run are separate tasks, often in separate worker
    processes: the workbook is read once, by the preview, and a run or a
    resumed run reads the rows it copied."""
    from customers.imports import reading
    from customers.imports.services import import_job_preview

    streamed, stream = [], reading.xlsx_rows

    def counted(path):
        streamed.append(path)
        return stream(path)

    monkeypatch.setattr(reading, "xlsx_rows", counted)
    settings.MEDIA_ROOT = tmp_path / "media"
    path = _workbook(
        tmp_path / "people.xlsx",
        [["External ID", "Last name"], ["X-1", "Berg"], [None, None], ["X-3", "Lind"]],
    )
    job = import_job_create(
        actor=admin, source="crm", original_name="people.xlsx", chunks=[path.read_bytes()]
    )
    streamed.clear()  # the upload's request read the headers only
    ImportJob.objects.filter(pk=job.pk).update(status="previewing")
    import_job_preview(job_id=job.pk)
    job.refresh_from_db()
    assert job.preview["created"] == 2
    assert pipeline.rows_copy_path(job).exists()

    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    assert import_job_run(job_id=job.pk)["created"] == 2
    reads = streamed if xlsx_reader == "streamed" else calamine_loads
    assert len(reads) == 1
    assert not pipeline.rows_copy_path(job).exists()
    assert SourceIdentifier.objects.filter(external_id="X-3").exists()


def test_an_uploaded_workbook_is_not_loaded_whole_to_read_its_headers(
    tmp_path, calamine_loads, admin
):
    """The upload's request reads only the sheet's first row (streamed)."""
    path = _workbook(tmp_path / "people.xlsx", [["External ID", "Last name"], ["X-1", "Berg"]])
    job = import_job_create(
        actor=admin, source="crm", original_name="people.xlsx", chunks=[path.read_bytes()]
    )
    assert job.headers == ["External ID", "Last name"]
    assert job.mapping == {"External ID": "external_id", "Last name": "last_name"}
    assert calamine_loads == []


def test_headers_the_streaming_reader_cannot_find_are_read_by_calamine(
    tmp_path, calamine_loads, monkeypatch
):
    from customers.imports import reading

    def parts_elsewhere(path):
        raise reading.XlsxError("no xl/workbook.xml")
        yield  # a generator, as the real reader

    monkeypatch.setattr(reading, "xlsx_rows", parts_elsewhere)
    path = _workbook(tmp_path / "people.xlsx", [["External ID", "Last name"], ["X-1", "Berg"]])
    assert reading.sniff_headers(path).headers == ["External ID", "Last name"]
    assert calamine_loads == [str(path)]


def test_a_rows_copy_reads_exactly_as_the_workbook_and_serves_only_that_file(
    tmp_path, calamine_loads
):
    from customers.imports.reading import open_sheet

    copy = tmp_path / "rows" / "1.csv"
    path = _workbook(
        tmp_path / "people.xlsx",
        [
            ["External ID", 'Note, with "quotes"'],
            ["X-1", 'two\nlines, a comma and a "quote"'],
            [None, None],
            ["X-3", "Åsa Öberg " + "x" * 5000],
            ["X-4"],
        ],
    )
    sheet, rows = open_sheet(path, copy=copy)
    read = list(rows)
    assert copy.exists()
    again, rows = open_sheet(path, copy=copy)
    assert (again.headers, list(rows)) == (sheet.headers, read)
    assert [number for number, _ in read] == [2, 4, 5]
    assert len(calamine_loads) == 1

    _workbook(path, [["External ID", "Last name"], ["X-1", "Berg"], ["X-2", "Nord"]])
    _, rows = open_sheet(path, copy=copy)
    assert list(rows) == [(2, ["X-1", "Berg"]), (3, ["X-2", "Nord"])]
    assert len(calamine_loads) == 2


def test_a_reading_stopped_early_leaves_no_rows_copy(tmp_path):
    from customers.imports.reading import open_sheet

    copy = tmp_path / "rows" / "1.csv"
    path = _workbook(tmp_path / "people.xlsx", [["External ID"], ["X-1"], ["X-2"]])
    _, rows = open_sheet(path, copy=copy)
    assert next(rows) == (2, ["X-1"])
    rows.close()
    assert list(copy.parent.iterdir()) == []


def test_a_workbook_refused_by_the_check_leaves_no_rows_copy(tmp_path, monkeypatch, settings):
    from customers.imports import reading

    settings.MEDIA_ROOT = tmp_path / "media"

    # Below Excel's own limit (32,767 characters a cell), which calamine applies.
    monkeypatch.setattr(reading, "MAX_CELL_CHARS", 1000)
    path = _workbook(
        tmp_path / "huge.xlsx",
        [["External ID", "Last name"], ["X-1", "Berg"], ["X-2", "B" * 2000]],
    )
    with pytest.raises(CommandError, match="larger than"):
        run_import(path)
    job = ImportJob.objects.get()
    assert job.status == "failed"
    copy = pipeline.rows_copy_path(job)
    assert not list(copy.parent.glob(f"{copy.name}*"))  # nor a partial one
    assert not Customer.objects.exists()


def test_a_streamed_sheet_reads_exactly_as_one_loaded_whole(tmp_path, settings):
    import datetime

    from openpyxl import Workbook
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    from customers.imports.reading import open_sheet

    book = Workbook()
    sheet = book.active
    sheet.append(["External ID", "Name", "Born", "Seen", "Score", "Active", "Note"])
    sheet.append(["A-1", "Åsa Öberg", datetime.date(1970, 5, 17), None, 12.5, True, "x & <y>"])
    sheet.append([1002, "Ola", "1981-02-03", datetime.datetime(2024, 1, 2, 3, 4, 5), 7, False])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["A-3", CellRichText("Ann ", TextBlock(InlineFont(b=True), "Lee")), None])
    sheet["C5"].number_format = "dd/mm/yyyy"
    sheet["C5"] = 25000  # a number shown as a date: 1968-06-11
    sheet["G5"] = "=1+1"
    path = tmp_path / "mixed.xlsx"
    book.save(path)

    def read() -> tuple[list[str], list]:
        found, rows = open_sheet(path)
        return found.headers, list(rows)

    loaded = read()
    settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    streamed = read()
    pad = len(loaded[0])
    assert streamed[0] == loaded[0]
    assert [(n, (c + [""] * pad)[:pad]) for n, c in streamed[1]] == [
        (n, (c + [""] * pad)[:pad]) for n, c in loaded[1]
    ]
    assert streamed[1][0] == (2, ["A-1", "Åsa Öberg", "1970-05-17", "", "12.5", "True", "x & <y>"])
    assert streamed[1][2][1][:3] == ["A-3", "Ann Lee", "1968-06-11"]


def _excel_workbook(path: Path, prefix: str = "") -> Path:
    """A workbook as Excel writes it: text in one shared table, rich text as
    runs; `prefix`: the sheet's elements named with a namespace prefix, as
    some other programs write them."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relations = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    p = f"{prefix}:" if prefix else ""
    cells = "".join(
        f'<{p}c r="{column}{row}" t="s"><{p}v>{index}</{p}v></{p}c>'
        for row, indexes in ((1, (0, 1)), (2, (2, 3)))
        for column, index in zip("AB", indexes, strict=True)
    )
    namespace = f'xmlns:{prefix}="{main}"' if prefix else f'xmlns="{main}"'
    half = len(cells) // 2
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" '
            f'Type="{relations}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{relations}"><sheets>'
            '<sheet name="People" sheetId="1" r:id="rId7"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{package}">'
            f'<Relationship Id="rId7" Type="{relations}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId8" Type="{relations}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/sharedStrings.xml": (
            f'<sst xmlns="{main}"><si><t>external_id</t></si><si><t>last_name</t></si>'
            "<si><t>C-&amp;1</t></si><si><r><t>Le</t></r><r><rPr/><t>é</t></r>"
            "<rPh><t>ignored</t></rPh></si></sst>"
        ),
        "xl/worksheets/sheet1.xml": f"<{p}worksheet {namespace}><{p}sheetData>"
        + f'<{p}row r="1">{cells[:half]}</{p}row><{p}row r="2">{cells[half:]}</{p}row>'
        + f"</{p}sheetData></{p}worksheet>",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


EXCEL_ROWS = (["external_id", "last_name"], [(2, ["C-&1", "Leé"])])


def test_shared_strings_as_excel_writes_them_stream_as_they_load(tmp_path, settings):
    from customers.imports.reading import open_sheet

    path = _excel_workbook(tmp_path / "excel.xlsx")
    loaded = open_sheet(path)
    loaded = (loaded[0].headers, list(loaded[1]))
    settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    streamed = open_sheet(path)
    assert (streamed[0].headers, list(streamed[1])) == loaded == EXCEL_ROWS


def _many_shared_strings(sst: bytes, count: int = 5000, tail: bytes = b"") -> bytes:
    """The shared strings with `count` more after them (90 kB), then `tail`."""
    more = b"".join(b"<si><t>filler %d</t></si>" % i for i in range(count))
    return sst.replace(b"</sst>", more + tail + b"</sst>")


def _strings_broken_past_the_header(path: Path) -> Path:
    """An Excel workbook whose shared strings break 90 kB past the header's."""
    return _part_changed(
        _excel_workbook(path),
        "xl/sharedStrings.xml",
        lambda sst: _many_shared_strings(sst, tail=b"<si><t>broken</si>"),
    )


def test_the_upload_reads_a_workbooks_headers_without_its_whole_shared_strings(tmp_path):
    from customers.imports.reading import sniff_headers

    # Strings past the first few that the header row names are broken: the
    # upload never parses that far, so it maps the columns at once...
    path = _strings_broken_past_the_header(tmp_path / "excel.xlsx")
    assert sniff_headers(path).headers == EXCEL_ROWS[0]


@pytest.mark.parametrize("in_memory_mb", [None, 0])
def test_a_workbook_whose_shared_strings_break_past_those_used_is_refused_whole(
    tmp_path, settings, in_memory_mb
):
    # ...and reading the whole file, loaded or streamed, refuses it before
    # anything is written, though no cell uses a string past the break.
    if in_memory_mb is not None:
        settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = in_memory_mb
    path = _strings_broken_past_the_header(tmp_path / "excel.xlsx")
    with pytest.raises(CommandError, match="cannot be opened"):
        run_import(path, source="excel")
    assert not Customer.objects.exists()


def test_a_workbook_with_many_shared_strings_streams_as_it_loads(tmp_path, settings):
    from customers.imports.reading import open_sheet

    path = _part_changed(
        _excel_workbook(tmp_path / "excel.xlsx"), "xl/sharedStrings.xml", _many_shared_strings
    )
    settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    streamed = open_sheet(path)
    assert (streamed[0].headers, list(streamed[1])) == EXCEL_ROWS


def test_a_sheet_whose_elements_carry_a_namespace_prefix_streams_the_same(tmp_path, settings):
    from customers.imports.reading import open_sheet

    settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    streamed = open_sheet(_excel_workbook(tmp_path / "prefixed.xlsx", prefix="x"))
    assert (streamed[0].headers, list(streamed[1])) == EXCEL_ROWS


BAD_ROWS = [
    ("C-9,Zed,Zee,not-an-email,,,GB,,,", "email", "needs exactly one '@'"),
    ("C-9,Zed,Zee,,12,,GB,,,", "phone", "not a valid phone number"),
    ("C-9,Zed,Zee,,,12/03/1985,GB,,,", "date_of_birth", "not a date in ISO 8601 form"),
    ("C-9,Zed,Zee,,,1985-13-01,GB,,,", "date_of_birth", "not a date in ISO 8601 form"),
    ("C-9,Zed,Zee,,,1899-12-31,GB,,,", "date_of_birth", "not a plausible date of birth"),
    ("C-9,Zed,Zee,,,2999-01-01,GB,,,", "date_of_birth", "not a plausible date of birth"),
    ("C-9,Zed,Zee,,,,Atlantis,,,", "country", "not an ISO 3166 country"),
    ("C-9,,,,,,GB,,,", "last_name", "needs a first_name or a last_name"),
    (",Zed,Zee,,,,GB,,,", "external_id", "external_id is required"),
]


@pytest.mark.parametrize(("row", "column", "reason"), BAD_ROWS)
def test_a_bad_row_is_rejected_with_row_column_and_reason_and_good_rows_still_import(
    tmp_path, row, column, reason
):
    summary = run_import(write(tmp_path, "\n".join([HEADER, GOOD[0], row, GOOD[1]])))
    assert (summary["created"], summary["errors"]) == (2, 1)
    issue = ImportJob.objects.get(pk=summary["job"]).issues.get()
    assert (issue.row_number, issue.column, issue.level) == (3, column, "error")
    assert reason in issue.message


def test_a_date_of_birth_is_plausible_up_to_today_as_the_days_go_by(monkeypatch):
    from customers.imports import rows
    from customers.imports.rows import parse_date

    # The day known is put back afterwards: the clock goes back for other tests.
    monkeypatch.setattr(rows._Today, "known", rows._Today.known)
    with time_machine.travel(datetime.datetime(2030, 5, 1, 12, tzinfo=datetime.UTC), tick=False):
        assert parse_date("2030-05-01") == datetime.date(2030, 5, 1)
        with pytest.raises(ValidationError, match="not a plausible date of birth"):
            parse_date("2030-05-02")
    # The next day that date is today: read from the clock, not from the day known.
    with time_machine.travel(datetime.datetime(2030, 5, 2, 12, tzinfo=datetime.UTC), tick=False):
        assert parse_date("2030-05-02") == datetime.date(2030, 5, 2)


def test_a_row_with_values_past_the_header_is_rejected_as_shifted_and_the_rest_import(
    tmp_path, admin, client_for
):
    # "Lee, Jr" without quotes: every value after it lands one column to the right.
    text = "\n".join(
        [
            HEADER,
            GOOD[0],
            "C-2,Bob,Lee, Jr,bob@example.com,+44 20 7946 0959,1979-01-30,GB,Leeds,2 Low Rd,LS1 1AA",
            GOOD[2] + ",,",  # empty cells past the header, as some exports add: harmless
        ]
    )
    summary = run_import(write(tmp_path, text))

    assert (summary["created"], summary["errors"]) == (2, 1)
    assert not SourceIdentifier.objects.filter(external_id="C-2").exists()
    issue = ImportJob.objects.get(pk=summary["job"]).issues.get()
    assert (issue.row_number, issue.column) == (3, "column 11")
    assert issue.message.startswith("The row has 11 cells and the header 10 columns")
    # The error report holds the row's cells as the file split them.
    report = client_for(admin).get(f"/imports/{summary['job']}/issues.csv").content.decode()
    assert "3,error,column 11," in report and ",C-2,Bob,Lee, Jr,bob@example.com," in report


@pytest.mark.parametrize("streamed", [False, True])
def test_a_workbook_value_under_no_header_is_an_unnamed_columns_and_ignored(
    tmp_path, settings, streamed
):
    if streamed:
        settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    path = _workbook(
        tmp_path / "notes.xlsx",
        [["external_id", "first_name", "last_name"], ["C-1", "Ann", "Lee", "called twice"]],
    )

    summary = run_import(path)

    assert (summary["created"], summary["errors"]) == (1, 0)


def test_a_lenient_import_rejects_a_shifted_row_too(tmp_path):
    text = "\n".join([HEADER, "C-1,Ann,Lee,ann@example.com,,,GB,London,1 High St,SW1A 1AA,x"])

    summary = run_import(write(tmp_path, text), "--lenient")

    assert (summary["created"], summary["errors"]) == (0, 1)


def test_lenient_import_keeps_the_row_without_its_invalid_optional_value(tmp_path):
    row = "C-9,Zed,Zee,not-an-email,,,GB,,,"
    summary = run_import(write(tmp_path, "\n".join([HEADER, row])), "--lenient")
    assert (summary["created"], summary["errors"], summary["warnings"]) == (1, 0, 1)
    zed = SourceIdentifier.objects.get(external_id="C-9").customer
    assert not zed.emails.exists()
    issue = ImportJob.objects.get(pk=summary["job"]).issues.get()
    assert issue.level == "warning" and "left out" in issue.message


def test_lenient_never_keeps_a_row_that_cannot_identify_a_customer(tmp_path):
    summary = run_import(write(tmp_path, "\n".join([HEADER, ",Zed,Zee,,,,,,,"])), "--lenient")
    assert (summary["created"], summary["errors"]) == (0, 1)


def test_duplicate_external_ids_in_one_file_reject_the_later_rows(tmp_path):
    text = "\n".join([HEADER, GOOD[0], GOOD[0].replace("Ann", "Annie")])
    summary = run_import(write(tmp_path, text))
    assert (summary["created"], summary["errors"]) == (1, 1)
    issue = ImportJob.objects.get(pk=summary["job"]).issues.get()
    assert issue.row_number == 3
    assert issue.message == "external_id 'C-1' already appeared in row 2."


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", "<a>" + "0" * 50_000_000 + "</a>")
    return path


def _xlsx_with_dtd(path: Path) -> Path:
    from openpyxl import Workbook

    Workbook().save(path)
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    body = parts["xl/workbook.xml"]
    body = body.split(b"?>", 1)[1] if body.startswith(b"<?xml") else body
    parts["xl/workbook.xml"] = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + body
    )
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: write(d, ""), "The file is empty."),
        (
            lambda d: write(d, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50, "photo.csv"),
            "not a text spreadsheet",
        ),
        (lambda d: write(d, HEADER + '\nC-1,"Ann,Lee\n'), "unterminated quote"),
        (
            lambda d: write(d, "first_name,last_name\nAnn,Lee\n"),
            "No column is mapped to external_id",
        ),
        (lambda d: write(d, HEADER + "\nC-1," + "x" * 1_000_000 + "\n"), "a cell is larger than"),
        (lambda d: _zip_bomb(d / "bomb.xlsx"), "zip bomb"),
        (lambda d: _xlsx_with_dtd(d / "dtd.xlsx"), "carries a DTD or external entity"),
        (lambda d: write(d, "hello", "notes.pdf"), "Only .csv and .xlsx files"),
        # Mapped by name, the second 'email' would go unread, silently.
        (
            lambda d: write(d, "external_id,email,first_name,email\nC-9,a@x.org,Al,b@x.org\n"),
            "The header names two columns 'email' (columns 2 and 4)",
        ),
        (
            lambda d: _workbook(
                d / "twice.xlsx", [["external_id", "phone", " phone "], ["C-9", "1", "2"]]
            ),
            "The header names two columns 'phone' (columns 2 and 3)",
        ),
    ],
)
def test_a_rejected_file_gets_a_clear_message_and_changes_nothing(tmp_path, make, message):
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD]), "first.csv"))
    snapshot = (Customer.objects.count(), Customer.history.count(), EmailAddress.objects.count())
    with pytest.raises(CommandError) as caught:
        run_import(make(tmp_path))
    assert message in str(caught.value)
    assert snapshot == (
        Customer.objects.count(),
        Customer.history.count(),
        EmailAddress.objects.count(),
    )


def _part_changed(path: Path, part: str, change) -> Path:
    """The workbook at `path` with its `part` replaced by change(part)."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts[part] = change(parts[part])
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def _xlsx_changed(path: Path, part: str, change) -> Path:
    _workbook(path, [["external_id", "first_name", "last_name"], ["C-1", "Ann", "Lee"]])
    return _part_changed(path, part, change)


def _without_declaration(xml: bytes) -> bytes:
    return xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml


SHEET = "xl/worksheets/sheet1.xml"


@pytest.mark.parametrize(
    ("part", "change", "message"),
    [
        # Past the first 4 KB that check_xlsx reads: the streaming parser refuses it.
        (
            SHEET,
            lambda xml: (
                b"<!--"
                + b"x" * 8000
                + b'--><!DOCTYPE x [<!ENTITY e "boom">]>'
                + _without_declaration(xml)
            ),
            "cannot be opened",
        ),
        (SHEET, lambda xml: xml[: len(xml) // 2], "cannot be opened"),
        (SHEET, lambda xml: xml.replace(b">Ann<", b">" + b"A" * 40_000 + b"<"), "larger than"),
    ],
)
def test_a_broken_streamed_sheet_is_refused_and_changes_nothing(
    tmp_path, settings, part, change, message
):
    settings.CIM_IMPORT_XLSX_IN_MEMORY_MB = 0
    with pytest.raises(CommandError) as caught:
        run_import(_xlsx_changed(tmp_path / "broken.xlsx", part, change))
    assert message in str(caught.value)
    assert not Customer.objects.exists()


def test_a_file_over_the_size_limit_is_refused(tmp_path, settings):
    settings.CIM_IMPORT_MAX_MB = 1
    path = write(tmp_path, HEADER + "\n" + ("C-1,A,B,,,,,,,\n" * 80_000))
    with pytest.raises(CommandError, match="the limit is 1 MB"):
        run_import(path)
    assert not Customer.objects.exists()


def test_an_operators_dry_run_counts_rows_that_look_like_stored_customers(tmp_path):
    from duplicates.scanning import match_keys_refresh

    run_import(write(tmp_path, "\n".join([HEADER, *GOOD]), "crm.csv"))
    match_keys_refresh(customer_ids=list(Customer.objects.values_list("pk", flat=True)))
    # The same people under another system's ids, one of them restricted: the
    # operator, who reads the database from the shell anyway, is told of all.
    Customer.objects.filter(first_name="Bob").update(restricted=True)
    other = "\n".join([HEADER, *(row.replace("C-", "B-", 1) for row in GOOD)])

    summary = run_import(write(tmp_path, other, "billing.csv"), "--dry-run", source="billing")

    assert (summary["created"], summary["likely_duplicates"]) == (3, 3)
    assert Customer.objects.count() == 3


def test_dry_run_writes_nothing(tmp_path):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])), "--dry-run")
    assert summary["created"] == 3 and summary["dry_run"]
    assert not Customer.objects.exists() and not Customer.history.exists()


def _job_for(tmp_path, text, name="c.csv"):
    job = import_job_create(
        actor=system_actor(), source="crm", original_name=name, path=write(tmp_path, text, name)
    )
    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    return job


def test_a_crash_mid_file_resumes_with_no_row_lost_or_doubled(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    rows = [f"K-{i},First{i},Last{i},k{i}@example.com,,,GB,,," for i in range(7)]
    job = _job_for(tmp_path, "\n".join([HEADER, *rows]))
    calls = {"n": 0}
    original = pipeline.Importer._process

    def crash_on_third_chunk(self, chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        return original(self, chunk)

    monkeypatch.setattr(pipeline.Importer, "_process", crash_on_third_chunk)
    with pytest.raises(SystemExit):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.next_row, job.created) == ("running", 4, 6, 4)

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at="2000-01-01T00:00:00Z")
    job.refresh_from_db()
    monkeypatch.setattr(pipeline.Importer, "_process", original)
    import_job_resume(actor=None, job=job)  # queued again; a worker picks it up
    assert import_job_run(job_id=job.pk)["created"] == 7
    assert Customer.objects.count() == 7
    assert Customer.history.filter(history_type="+").count() == 7
    assert import_job_run(job_id=job.pk) is None  # a redelivered message is a no-op


def test_a_resume_skips_the_chunks_committed_out_of_order(tmp_path, monkeypatch):
    """Several processes commit chunks in any order: a job that died with rows
    6-7 committed but rows 4-5 not writes exactly rows 4-5 and 8 on resume."""
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    rows = [f"K-{i},First{i},Last{i},,,,GB,,," for i in range(7)]
    job = _job_for(tmp_path, "\n".join([HEADER, *rows]))
    text = "\n".join([HEADER, *rows[:2], *rows[4:6]])
    pipeline.Importer(_job_for(tmp_path, text, name="first-run.csv"), dry_run=False).run()
    # That run's customers stand for the chunks committed before the crash.
    ImportChunk.objects.create(job_id=job.pk, first_row=2, last_row=3)
    ImportChunk.objects.create(job_id=job.pk, first_row=6, last_row=7)
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", heartbeat_at="2000-01-01T00:00:00Z", next_row=4, rows_done=4, created=4
    )
    job.refresh_from_db()
    import_job_resume(actor=None, job=job)
    summary = import_job_run(job_id=job.pk)
    assert (summary["rows"], summary["created"]) == (7, 7)
    assert sorted(
        SourceIdentifier.objects.filter(source="crm").values_list("external_id", flat=True)
    ) == [f"K-{i}" for i in range(7)]
    assert Customer.history.filter(history_change_reason=job.history_reason).count() == 3


def test_a_chunk_committed_meanwhile_by_another_run_of_the_job_is_not_written_again(
    tmp_path, monkeypatch
):
    """A resumed job racing a dying worker's last chunk: the second writer of
    the rows waits for the first one's commit, then writes and counts nothing."""
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    rows = [f"K-{i},First{i},Last{i},,,,GB,,," for i in range(3)]
    job = _job_for(tmp_path, "\n".join([HEADER, *rows]))
    job.refresh_from_db()
    original = pipeline.Importer._stage

    def committed_by_another_process_once_staged(self, chunk, *looked_up):
        staged = original(self, chunk, *looked_up)
        if chunk[0][0] == 2:
            ImportChunk.objects.create(job=self.job, first_row=2, last_row=3)
        return staged

    monkeypatch.setattr(pipeline.Importer, "_stage", committed_by_another_process_once_staged)
    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    summary = import_job_run(job_id=job.pk)
    assert (summary["rows"], summary["created"]) == (1, 1)
    assert list(SourceIdentifier.objects.values_list("external_id", flat=True)) == ["K-2"]
    assert ImportChunk.objects.filter(job=job).count() == 2


def test_revert_removes_created_and_restores_updated_customers(tmp_path, admin):
    run_import(write(tmp_path, "\n".join([HEADER, GOOD[0]]), "base.csv"))
    text = "\n".join([HEADER, GOOD[0].replace("Lee", "Kay"), *GOOD[1:]])
    summary = run_import(write(tmp_path, text, "second.csv"))
    job = ImportJob.objects.get(pk=summary["job"])
    report = revert(admin, job)
    assert (report["removed"], report["restored"], report["conflict_count"]) == (2, 1, 0)
    ann = SourceIdentifier.objects.get(external_id="C-1").customer
    assert ann.last_name == "Lee"
    assert ann.history.latest().history_change_reason == f"revert of import #{job.pk}"
    assert not SourceIdentifier.objects.filter(external_id__in=["C-2", "C-3"]).exists()
    job.refresh_from_db()
    assert job.status == "reverted"


def test_revert_lists_but_does_not_overwrite_customers_changed_since(tmp_path, admin, support):
    run_import(write(tmp_path, "\n".join([HEADER, GOOD[0]]), "base.csv"))
    summary = run_import(
        write(tmp_path, "\n".join([HEADER, GOOD[0].replace("Lee", "Kay"), GOOD[1]]), "second.csv")
    )
    ann = SourceIdentifier.objects.get(external_id="C-1").customer
    bob = SourceIdentifier.objects.get(external_id="C-2").customer
    services.customer_update(actor=support, customer=ann, reason="fix", first_name="Anna")
    services.customer_update(actor=support, customer=bob, reason="fix", first_name="Robert")
    report = revert(admin, ImportJob.objects.get(pk=summary["job"]))
    assert (report["removed"], report["restored"], report["conflict_count"]) == (0, 0, 2)
    ann.refresh_from_db()
    assert (ann.first_name, ann.last_name) == ("Anna", "Kay")
    assert Customer.objects.filter(pk=bob.pk).exists()


def test_error_report_neutralises_spreadsheet_formulas(tmp_path, admin, client_for):
    text = "\n".join([HEADER, "C-1,=cmd|' /C calc'!A0,@SUM(1),-2+3,+44,,,,,"])
    summary = run_import(write(tmp_path, text))
    body = client_for(admin).get(f"/imports/{summary['job']}/issues.csv").content.decode()
    assert "'=cmd" in body and "'@SUM(1)" in body and "'-2+3" in body
    assert ",=cmd" not in body


def test_utf8_with_bom_header_is_read_cleanly(tmp_path):
    text = codecs.BOM_UTF8 + "External ID;Surname\nB-1;Bøe\n".encode()
    summary = run_import(write(tmp_path, text))
    assert summary["created"] == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "person", "first_name": "Ann", "last_name": "Lee"},
        {"kind": "person", "last_name": "Lee"},
        {"kind": "organization", "organization_name": "Acme Ltd", "first_name": "x"},
    ],
)
def test_the_fast_path_names_customers_as_the_model_does(fields):
    assert pipeline.compose_display_name(fields) == Customer(**fields).compose_display_name()


def test_customers_an_import_creates_are_screened_right_after_it(
    tmp_path, celery_eager, django_capture_on_commit_callbacks
):
    from compliance import screening
    from compliance.models import ScreeningHit, WatchListEntry

    listed = WatchListEntry.objects.create(
        list_name="OFAC SDN", reference="SDN-1", name="Viktor Drakov", country="RU"
    )
    screening.watchlist_index_refresh([listed.pk])
    screening.screening_run_nightly(actor=system_actor())  # the last run, before the import
    rows = [*GOOD, "C-4,Victor,Drakoff,,,1961-02-03,RU,Moscow,1 Tverskaya,125009"]
    with django_capture_on_commit_callbacks(execute=True):
        run_import(write(tmp_path, "\n".join([HEADER, *rows])))
    hit = ScreeningHit.objects.get()
    assert hit.customer.display_name == "Victor Drakoff"
    assert hit.history.get().history_user.username == "system"


def test_an_import_queues_an_incremental_duplicate_scan(
    tmp_path, django_capture_on_commit_callbacks
):
    from duplicates.models import DuplicateScan

    with django_capture_on_commit_callbacks(execute=True):
        run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    scan = DuplicateScan.objects.get()
    assert (scan.kind, scan.status, scan.requested_by) == ("incremental", "queued", None)
    with django_capture_on_commit_callbacks(execute=True):
        run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))  # changes nothing
    assert DuplicateScan.objects.count() == 1


def test_a_reimport_changing_many_customers_updates_a_chunk_in_one_plain_statement(tmp_path):
    # Django's bulk_update wrote a chunk's customers as one CASE WHEN per row and
    # field: 17 to 21 s for a chunk of 9,000 customers.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = [f"C-{n},Ann{n},Lee,,,,GB,,," for n in range(40)]
    run_import(write(tmp_path, "\n".join([HEADER, *rows])))
    renamed = [row.replace(",Lee,", ",Kay,") for row in rows]
    with CaptureQueriesContext(connection) as queries:
        summary = run_import(write(tmp_path, "\n".join([HEADER, *renamed]), "v2.csv"))

    assert (summary["created"], summary["updated"]) == (0, 40)
    assert set(Customer.objects.values_list("last_name", flat=True)) == {"Kay"}
    assert Customer.history.filter(history_type="~").count() == 40
    updates = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "customers_')
    ]
    if connection.vendor == "postgresql":
        assert not [sql for sql in updates if "CASE" in sql]
        assert len([sql for sql in updates if "customers_customer" in sql.split()[1]]) == 1


def test_customers_renamed_by_a_reimport_are_found_by_their_new_name_only(tmp_path, support):
    from customers.models import CustomerSearchToken, SearchWord
    from customers.selectors import customer_search

    def found(query):
        return sorted(
            hit.customer.display_name for hit in customer_search(user=support, query=query).hits
        )

    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    # Ann's last name changes; Bob's first name is blank, so his stored one stays.
    renamed = [
        GOOD[0].replace(",Lee,", ",Quixley,"),
        GOOD[1].replace(",Bob,", ",,").replace(",Stone,", ",Zabrowski,"),
        GOOD[2],
    ]
    summary = run_import(write(tmp_path, "\n".join([HEADER, *renamed]), "v2.csv"))

    assert summary["updated"] == 2
    assert found("Quixley") == ["Ann Quixley"]
    assert found("Bob Zabrowski") == ["Bob Zabrowski"]
    assert found("Stone") == [] and found("Lee") == []
    assert found("Dupont") == ["Chloé Dupont"]
    bob = SourceIdentifier.objects.get(external_id="C-2").customer_id
    assert sorted(
        CustomerSearchToken.objects.filter(customer_id=bob).values_list("token", flat=True)
    ) == ["bob", "zabrowski"]
    assert SearchWord.objects.filter(word__in=["quixley", "zabrowski"]).count() == 2


def test_a_rename_writes_only_the_words_that_change(tmp_path, monkeypatch):
    """Ann keeps her first name and Bob his, so their words "ann" and "bob"
    stay as stored: only the new last names are written, only the old ones
    deleted."""
    from cim.bulk import RowWriter
    from customers.models import CustomerSearchToken

    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann, bob = (SourceIdentifier.objects.get(external_id=i).customer_id for i in ("C-1", "C-2"))
    written = []
    insert = RowWriter.insert

    def recording(self, model, columns, rows):
        if model is CustomerSearchToken:
            written.extend(rows)
        return insert(self, model, columns, rows)

    monkeypatch.setattr(RowWriter, "insert", recording)
    renamed = [
        GOOD[0].replace(",Lee,", ",Quixley,"),
        GOOD[1].replace(",Stone,", ",Stone-Zabrowski,"),
        GOOD[2],
    ]
    summary = run_import(write(tmp_path, "\n".join([HEADER, *renamed]), "v2.csv"))

    assert summary["updated"] == 2
    assert sorted(written) == sorted([(ann, "quixley"), (bob, "zabrowski")])
    tokens = CustomerSearchToken.objects.filter(customer_id__in=[ann, bob])
    assert sorted(tokens.values_list("customer_id", "token")) == sorted(
        [(ann, "ann"), (ann, "quixley"), (bob, "bob"), (bob, "stone"), (bob, "zabrowski")]
    )
