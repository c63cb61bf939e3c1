"""What Supabase's database advisors report, checked on the migrated schema.

Each check is a catalog query modelled on one of Supabase's lints (splinter):
the baseline must give none of them, and each must find a deliberately bad
object created in the test's transaction (rolled back afterwards).
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PARAMETERS = {"schemas": ["public", "private"], "api_roles": ["anon", "authenticated"]}

CHECKS = {
    # A reg* column (regconfig, regproc, ...) blocks pg_upgrade, so Supabase
    # cannot upgrade the project's Postgres in place.
    "reg_type_column": """
        select format('%s.%s.%s %s', n.nspname, c.relname, a.attname,
                      pg_catalog.format_type(a.atttypid, a.atttypmod))
          from pg_catalog.pg_attribute a
          join pg_catalog.pg_class c on c.oid = a.attrelid
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          join pg_catalog.pg_type t on t.oid = a.atttypid
          left join pg_catalog.pg_type e on e.oid = t.typelem
         where n.nspname = any(cast(:schemas as text[]))
           and a.attnum > 0 and not a.attisdropped
           and (t.typname like 'reg%' or e.typname like 'reg%')
           and 'pg_catalog'::regnamespace in (t.typnamespace, e.typnamespace)
    """,
    # function_search_path_mutable: a function whose names resolve through
    # its caller's search_path.
    "function_search_path_mutable": """
        select p.oid::regprocedure::text
          from pg_catalog.pg_proc p
          join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname = any(cast(:schemas as text[]))
           and not exists (
                 select 1 from pg_catalog.pg_depend d
                  where d.objid = p.oid and d.deptype = 'e')
           and not exists (
                 select 1 from unnest(p.proconfig) as setting
                  where setting like 'search_path=%')
    """,
    # anon/authenticated_security_definer_function_executable: an RPC of the
    # exposed schema that runs as its owner.
    "security_definer_function_executable": """
        select format('%s by %s', p.oid::regprocedure, r.role)
          from pg_catalog.pg_proc p
          cross join unnest(cast(:api_roles as text[])) as r(role)
         where p.pronamespace = 'public'::regnamespace
           and p.prosecdef
           and pg_catalog.has_function_privilege(r.role, p.oid, 'execute')
    """,
    # multiple_permissive_policies: Postgres evaluates every one for each row.
    "multiple_permissive_policies": """
        select format('%s for %s %s: %s', c.oid::regclass, r.rolname, a.cmd,
                      string_agg(p.polname, ', ' order by p.polname))
          from pg_catalog.pg_policy p
          join pg_catalog.pg_class c on c.oid = p.polrelid
          cross join unnest(array['r', 'a', 'w', 'd']) as a(cmd)
          join pg_catalog.pg_roles r
            on r.rolname in ('anon', 'authenticated', 'service_role')
           and (r.oid = any(p.polroles) or 0 = any(p.polroles))
         where c.relnamespace::regnamespace::text = any(cast(:schemas as text[]))
           and p.polpermissive
           and p.polcmd in (a.cmd, '*')
         group by c.oid, r.rolname, a.cmd
        having count(*) > 1
    """,
    # rls_enabled_no_policy: a table nobody but its owner can use, silently.
    "rls_enabled_no_policy": """
        select c.oid::regclass::text
          from pg_catalog.pg_class c
         where c.relnamespace::regnamespace::text = any(cast(:schemas as text[]))
           and c.relkind in ('r', 'p')
           and c.relrowsecurity
           and not exists (select 1 from pg_catalog.pg_policy p
                            where p.polrelid = c.oid)
    """,
    # rls_disabled_in_public: the Data API hands the table to anyone.
    "rls_disabled_in_public": """
        select c.oid::regclass::text
          from pg_catalog.pg_class c
         where c.relnamespace = 'public'::regnamespace
           and c.relkind in ('r', 'p')
           and not c.relrowsecurity
    """,
    # auth_rls_initplan: auth.uid() called for every row instead of once.
    "auth_rls_initplan": """
        select format('%s: %s', c.oid::regclass, p.polname)
          from pg_catalog.pg_policy p
          join pg_catalog.pg_class c on c.oid = p.polrelid
          cross join lateral (
            select coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
                   || ' ' ||
                   coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
                   as expr
          ) e
         where c.relnamespace::regnamespace::text = any(cast(:schemas as text[]))
           and (select count(*) from regexp_matches(e.expr, 'auth\\.uid\\(\\)', 'g'))
               > (select count(*)
                    from regexp_matches(e.expr, 'SELECT auth\\.uid\\(\\)', 'gi'))
    """,
}

BAD_OBJECTS = """
create table public.bad_settings (
  id int primary key, config regconfig, configs regconfig[]);
alter table public.bad_settings enable row level security;
create table public.bad_open (id int primary key, owner_id uuid);
create function public.bad_path() returns int language sql as 'select 1';
create function private.bad_private_path() returns int language sql as 'select 1';
create function public.bad_definer() returns int language sql security definer
  set search_path = '' as 'select 1';
create policy "one" on public.virtual_users for select to authenticated
  using (true);
create policy "per row" on public.bad_open for update to authenticated
  using (owner_id = auth.uid());
"""


async def findings(connection: AsyncConnection) -> dict[str, list[str]]:
    """What each check reports, sorted."""
    found = {}
    for name, query in CHECKS.items():
        used = {key: value for key, value in PARAMETERS.items() if f":{key}" in query}
        rows = await connection.execute(text(query), used)
        found[name] = sorted(rows.scalars())
    return found


async def test_the_migrated_schema_gives_the_advisors_nothing(
    connection: AsyncConnection,
) -> None:
    assert await findings(connection) == {name: [] for name in CHECKS}


async def test_every_check_finds_a_bad_object(connection: AsyncConnection) -> None:
    for statement in BAD_OBJECTS.split(";\n"):
        if statement.strip():
            await connection.execute(text(statement))

    found = await findings(connection)

    assert found == {
        "reg_type_column": [
            "public.bad_settings.config regconfig",
            "public.bad_settings.configs regconfig[]",
        ],
        "function_search_path_mutable": [
            "bad_path()",
            "private.bad_private_path()",
        ],
        "security_definer_function_executable": [
            "bad_definer() by anon",
            "bad_definer() by authenticated",
        ],
        "multiple_permissive_policies": [
            "virtual_users for authenticated r: one, virtual_users: read admin, "
            "own and my rooms' personas",
        ],
        "rls_enabled_no_policy": ["bad_settings"],
        "rls_disabled_in_public": ["bad_open"],
        "auth_rls_initplan": ["bad_open: per row"],
    }
