"""Small files of each supported type, built in memory, and hostile ones."""

import zlib


def make_pdf(lines: list[str], *, title: str | None = None) -> bytes:
    """A valid one-page PDF showing ``lines`` in Helvetica (xref offsets exact)."""
    return make_paged_pdf([lines], title=title)


def make_paged_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A valid PDF with one page per item of ``pages``, each showing its lines."""
    count = len(pages)
    font = 3 + count  # objects: catalog, page tree, the pages, font, contents, info
    kids = " ".join(f"{3 + n} 0 R" for n in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    ]
    objects += [
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        f"/Resources << /Font << /F1 {font} 0 R >> >> "
        f"/Contents {font + 1 + n} 0 R >>".encode()
        for n in range(count)
    ]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        text_ops = " ".join(
            f"({line.replace('(', '[').replace(')', ']')}) Tj T*" for line in lines
        )
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text_ops} ET".encode()
        objects.append(
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        )
    objects.append(f"<< /Title ({title}) >>".encode() if title else b"<< >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    size = len(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n" % (
        size,
        len(objects),
        xref_at,
    )
    out += b"%%EOF\n"
    return bytes(out)


MARKDOWN = """# Gardening guide

How to keep plants healthy.

## Watering

Water tomatoes deeply twice a week, early in the morning.

## Pruning

Remove suckers from tomato plants to focus growth on fruit.
"""

HTML = """<!doctype html>
<html><head><title>Bicycle maintenance</title><style>p {color: red}</style></head>
<body><nav>Home | About</nav>
<main>
<h1>Bicycle maintenance</h1>
<p>Keep the <b>chain</b> clean and lubricated every 300 kilometres.</p>
<h2>Brakes</h2>
<p>Replace brake pads when the groove is worn away.</p>
<script>console.log("not content")</script>
</main></body></html>
"""

PLAIN = "Quarterly report.\n\nRevenue grew by twelve percent in the northern region.\n"


def deep_html(depth: int) -> bytes:
    """HTML nested ``depth`` levels deep (its parse grows with depth squared)."""
    return b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth


def pdf_sharing_one_stream(
    stream: bytes, *, pages: int, deflate: bool, deflated: bytes | None = None
) -> bytes:
    """A PDF whose ``pages`` pages all show the same (maybe deflated) stream."""
    kids = " ".join(f"{4 + n} 0 R" for n in range(pages))
    flate = b" /Filter /FlateDecode" if deflate else b""
    body = deflated or (zlib.compress(stream, 9) if deflate else stream)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids.encode(), pages),
        b"<< /Length %d%s >>\nstream\n" % (len(body), flate) + body + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << "
        b"/Font << /F1 %d 0 R >> >> /Contents 3 0 R >>" % (4 + pages)
    ] * pages
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


def text_stream(chars: int) -> bytes:
    """A content stream that shows about ``chars`` characters of words."""
    line = b"(" + b"lorem ipsum dolor sit amet " * 3 + b") Tj T* "
    lines = chars // 81 + 1
    return b"BT /F1 12 Tf 14 TL 72 720 Td " + line * lines + b"ET"


def pdf_bomb(inflated_bytes: int) -> bytes:
    """A small PDF whose one stream inflates to ``inflated_bytes``.

    Compressed a megabyte at a time: the test never holds the inflated stream.
    """
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"BT /F1 12 Tf (")]
    megabyte = b"0" * 2**20
    for _ in range(inflated_bytes // 2**20):
        parts.append(packer.compress(megabyte))
    parts.append(packer.compress(b") Tj ET") + packer.flush())
    return pdf_sharing_one_stream(b"", pages=1, deflate=True, deflated=b"".join(parts))
