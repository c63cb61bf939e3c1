"""The second corpus of ``make eval``: the PostgreSQL 15 manual.

HTML from Debian's ``postgresql-doc-15`` package: SQL commands, client tools,
data types, functions and chapters on indexes, locking, partitioning and
vacuuming. The questions were written without the pages open, in a user's words;
a few are bare identifiers. Each is labelled with the page(s) (file stems) that
answer it.
"""

from eval_types import Conversation, Question

PACKAGE = "postgresql-doc-15"
HTML_DIR = "usr/share/doc/postgresql-doc-15/html"
TITLE = "the PostgreSQL 15 manual"

QUESTIONS: list[Question] = [
    ("build an index without blocking writes to the table", ("sql-createindex",)),
    (
        "reclaim the space of dead rows and refresh planner statistics",
        ("sql-vacuum", "routine-vacuuming"),
    ),
    ("load the rows of a CSV file into a table", ("sql-copy",)),
    ("add a column with a default value to an existing table", ("sql-altertable",)),
    ("see the plan chosen for a query with the real timings", ("sql-explain",)),
    ("let another user read one of my tables", ("sql-grant",)),
    ("empty a table fast and restart its identity counter", ("sql-truncate",)),
    (
        "keep the result of a query stored and recompute it later",
        ("sql-creatematerializedview", "sql-refreshmaterializedview"),
    ),
    (
        "recompute a stored query result while readers keep using it",
        ("sql-refreshmaterializedview",),
    ),
    ("insert a row, or update it when the key already exists", ("sql-insert",)),
    ("reorder a table on disk following one of its indexes", ("sql-cluster",)),
    ("rebuild an index that has become bloated or corrupted", ("sql-reindex",)),
    ("gather statistics about what a table contains", ("sql-analyze",)),
    (
        "generator of increasing integers for ids",
        ("sql-createsequence", "functions-sequence"),
    ),
    ("run my function automatically whenever a row is added", ("sql-createtrigger",)),
    ("define a new function written in SQL", ("sql-createfunction",)),
    ("wait for a message that another session sends", ("sql-listen", "sql-notify")),
    ("send a signal with a payload to the clients listening", ("sql-notify",)),
    ("take an exclusive lock on a whole table", ("sql-lock", "explicit-locking")),
    (
        "make my transaction serializable",
        ("sql-set-transaction", "transaction-iso"),
    ),
    ("plan a statement once and run it many times", ("sql-prepare",)),
    ("undo part of a transaction back to a named point", ("sql-savepoint",)),
    (
        "restrict which rows each user can see in a table",
        ("sql-createpolicy", "ddl-rowsecurity"),
    ),
    ("install an add-on module into the current database", ("sql-createextension",)),
    (
        "a data type with a check constraint that can be reused",
        ("sql-createdomain",),
    ),
    (
        "type with a fixed list of allowed labels like happy and sad",
        ("datatype-enum", "sql-createtype"),
    ),
    ("back up one database into a script or an archive file", ("app-pgdump",)),
    ("restore a custom-format archive using several jobs", ("app-pgrestore",)),
    ("copy a running cluster's files to set up a standby", ("app-pgbasebackup",)),
    ("create the data directory of a new cluster", ("app-initdb",)),
    (
        "create a new database from the shell",
        ("app-createdb", "sql-createdatabase"),
    ),
    ("sum or average values over groups of rows", ("functions-aggregate",)),
    ("rank rows within each partition of a result", ("functions-window",)),
    ("store a universally unique identifier", ("datatype-uuid",)),
    ("timestamp that knows about time zones", ("datatype-datetime",)),
    (
        "exact decimal numbers with a fixed count of digits after the point",
        ("datatype-numeric",),
    ),
    (
        "highlight the matching words of a document in search results",
        ("textsearch-controls",),
    ),
    ("find strings similar to a misspelled word", ("pgtrgm",)),
    ("an index that covers only some rows of a table", ("indexes-partial",)),
    (
        "which queries can use an index on several columns",
        ("indexes-multicolumn",),
    ),
    ("split a big table into pieces by date range", ("ddl-partitioning",)),
    ("avoid failures from transaction ID wraparound", ("routine-vacuuming",)),
    (
        "a column always computed from other columns of the row",
        ("ddl-generated-columns",),
    ),
    ("walk a tree of parent and child rows with one query", ("queries-with",)),
    (
        "loop over the rows of a query inside a PL/pgSQL function",
        ("plpgsql-control-structures",),
    ),
    ("allow password logins from a network address", ("auth-pg-hba-conf",)),
    ("delete rows that match rows of another table", ("sql-delete",)),
    ("get back the rows an UPDATE changed", ("sql-update",)),
    ("attach a description to a table or a column", ("sql-comment",)),
    ("first argument that is not null", ("functions-conditional",)),
    ("round a number to two decimal places", ("functions-math",)),
    ("check whether an array contains a given element", ("arrays",)),
    ("a period of time and whether two of them overlap", ("rangetypes",)),
    ("store key/value pairs in a single column", ("hstore",)),
    ("find which statements took the most time on the server", ("pgstatstatements",)),
    (
        "reset a session's state before a pooled connection is reused",
        ("sql-discard",),
    ),
    (
        "hand over everything a role owns before dropping it",
        ("sql-reassign-owned",),
    ),
    ("clean and analyze every database from the command line", ("app-vacuumdb",)),
    ("ON CONFLICT DO NOTHING", ("sql-insert",)),
    ("ts_headline", ("textsearch-controls",)),
    ("nextval setval", ("functions-sequence",)),
    ("NOWAIT", ("sql-lock", "explicit-locking")),
    ("pg_stat_statements_reset", ("pgstatstatements",)),
]

CONVERSATIONS: list[Conversation] = [
    Conversation(
        "how do I load a CSV file into a table",
        ("sql-copy",),
        "and how do I write a table out to one?",
        ("sql-copy",),
        "How do I export a table to a CSV file?",
    ),
    Conversation(
        "what does VACUUM do",
        ("sql-vacuum", "routine-vacuuming"),
        "does it lock the table while it runs?",
        ("sql-vacuum", "routine-vacuuming", "explicit-locking"),
        "Does VACUUM lock the table while it runs?",
    ),
    Conversation(
        "how do I create a materialized view",
        ("sql-creatematerializedview",),
        "and how do I bring its data up to date later?",
        ("sql-refreshmaterializedview",),
        "How do I refresh the data of a materialized view?",
    ),
    Conversation(
        "what is row level security",
        ("ddl-rowsecurity", "sql-createpolicy"),
        "how do I turn it on for one table?",
        ("ddl-rowsecurity", "sql-altertable"),
        "How do I enable row level security on one table?",
    ),
    Conversation(
        "how do I back up a database with pg_dump",
        ("app-pgdump",),
        "and how do I load that file back?",
        ("app-pgrestore", "app-pgdump"),
        "How do I restore a backup made with pg_dump?",
    ),
    Conversation(
        "what transaction isolation levels are there",
        ("transaction-iso", "sql-set-transaction"),
        "which one do I get if I don't choose?",
        ("transaction-iso", "sql-set-transaction"),
        "Which transaction isolation level is the default?",
    ),
    Conversation(
        "how do I create a trigger",
        ("sql-createtrigger",),
        "can it fire once per statement instead of once per row?",
        ("sql-createtrigger",),
        "Can a trigger fire once per statement instead of once per row?",
    ),
    Conversation(
        "what is a partial index",
        ("indexes-partial",),
        "when would the planner actually use one?",
        ("indexes-partial",),
        "When does the planner use a partial index?",
    ),
    Conversation(
        "how do I partition a table by range",
        ("ddl-partitioning",),
        "and how do I remove the oldest piece?",
        ("ddl-partitioning", "sql-altertable"),
        "How do I detach or drop the oldest partition of a partitioned table?",
    ),
    Conversation(
        "what is pg_trgm",
        ("pgtrgm",),
        "what kind of index speeds it up?",
        ("pgtrgm",),
        "Which index types speed up pg_trgm similarity searches?",
    ),
    Conversation(
        "how do sequences work",
        ("sql-createsequence", "functions-sequence"),
        "how do I read the value it just handed out?",
        ("functions-sequence",),
        "How do I get the value a sequence just returned in my session?",
    ),
    Conversation(
        "how do I write a recursive query",
        ("queries-with",),
        "how do I stop it from looping forever?",
        ("queries-with",),
        "How do I stop a recursive query from looping forever on cycles?",
    ),
    Conversation(
        "what does LISTEN do",
        ("sql-listen",),
        "how large can the message be?",
        ("sql-notify",),
        "How large can the payload of a NOTIFY message be?",
    ),
    Conversation(
        "how do I configure client authentication",
        ("auth-pg-hba-conf",),
        "what does the trust method mean?",
        ("auth-pg-hba-conf",),
        "What does the trust authentication method mean in pg_hba.conf?",
    ),
    Conversation(
        "what is the numeric type",
        ("datatype-numeric",),
        "and what about NaN or infinity?",
        ("datatype-numeric",),
        "Can the numeric type store NaN or infinity?",
    ),
    Conversation(
        "how do window functions work",
        ("functions-window",),
        "how do I get the value from the previous row?",
        ("functions-window",),
        "Which window function gives the value from the previous row?",
    ),
    Conversation(
        "how do I store JSON in a column",
        ("datatype-json",),
        "should I pick the binary one or the text one?",
        ("datatype-json",),
        "Should I use jsonb or json to store JSON in a column?",
    ),
    Conversation(
        "how do I explain a query",
        ("sql-explain",),
        "and see how much time each step really took?",
        ("sql-explain",),
        "How do I see the actual time of each plan step with EXPLAIN ANALYZE?",
    ),
]
