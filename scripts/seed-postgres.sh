#!/usr/bin/env bash
# Loads sample-data/ into the core-banking schema of sample-data/seed.sql,
# the way a bank's own load would: typed columns, so values a typed column
# cannot hold (a date like 02/29/1988) arrive as NULL, and a duplicate key
# keeps its first row. Needs psql and DATABASE_URL (or SOURCE_DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
db="${SOURCE_DATABASE_URL:-$DATABASE_URL}"
psql "$db" -X -q -v ON_ERROR_STOP=1 -f sample-data/seed.sql
psql "$db" -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TEMP TABLE c_in (customer_id text, parent_customer_id text, organization_id text, organization_name text, first_name text, middle_name text, last_name text, email text, phone text, date_of_birth text, address_line1 text, address_line2 text, city text, state text, postal_code text, country text, status text, created_at text, enrollment_start text, enrollment_end text, enrollment_opt_in text, alert_opt_in text, targeting_indicator text, member_id text);
CREATE TEMP TABLE k_in (card_id text, customer_id text, account_id text, account_type text, account_status text, portfolio_id text, account_open_date text, account_close_date text, account_holders text, pan text, cvv text, exp_month text, exp_year text, card_type text, brand text, name_on_card text, billing_zip text, card_status text, network_id text, open_date text, close_date text, is_default text, label text);
\copy c_in FROM 'sample-data/customers.csv' WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')
\copy k_in FROM 'sample-data/cards.csv' WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')
UPDATE c_in SET customer_id = ltrim(customer_id, E'\uFEFF');
CREATE FUNCTION pg_temp.ts(v text) RETURNS timestamptz LANGUAGE sql AS $$ SELECT CASE WHEN v ~ '^\d{4}-\d\d-\d\d' THEN v::timestamptz END $$;
CREATE FUNCTION pg_temp.dt(v text) RETURNS date LANGUAGE sql AS $$ SELECT CASE WHEN v ~ '^\d{4}-\d\d-\d\d$' THEN v::date END $$;
INSERT INTO corebank.program SELECT DISTINCT organization_id, coalesce(organization_name, organization_id) FROM c_in WHERE organization_id <> '' ON CONFLICT DO NOTHING;
INSERT INTO corebank.party
SELECT customer_id, nullif(parent_customer_id, ''), nullif(organization_id, ''), first_name, middle_name, last_name, email, phone,
       pg_temp.dt(date_of_birth), coalesce(nullif(status, ''), 'ACTIVE'), coalesce(pg_temp.ts(created_at), now()),
       pg_temp.ts(enrollment_start), pg_temp.ts(enrollment_end), member_id
FROM c_in WHERE customer_id <> '' ON CONFLICT DO NOTHING;
INSERT INTO corebank.party_address
SELECT customer_id, 'LEGAL', address_line1, address_line2, city, state, postal_code, country FROM c_in WHERE customer_id <> '' ON CONFLICT DO NOTHING;
INSERT INTO corebank.account
SELECT DISTINCT ON (account_id) account_id, coalesce(nullif(account_type, ''), 'DDA'), coalesce(nullif(account_status, ''), 'OPEN'), nullif(portfolio_id, ''),
       pg_temp.ts(account_open_date), pg_temp.ts(account_close_date)
FROM k_in WHERE account_id <> '' ORDER BY account_id ON CONFLICT DO NOTHING;
INSERT INTO corebank.card
SELECT card_id, nullif(account_id, ''), customer_id, pan, nullif(cvv, ''), nullif(exp_month, '')::int, nullif(exp_year, '')::int,
       card_type, nullif(brand, ''), name_on_card, billing_zip, nullif(card_status, ''), nullif(network_id, '')::int,
       pg_temp.ts(open_date), pg_temp.ts(close_date), CASE WHEN lower(is_default) IN ('true', '1', 'yes') THEN true WHEN lower(is_default) IN ('false', '0', 'no') THEN false END,
       nullif(label, '')
FROM k_in WHERE card_id <> '' ON CONFLICT DO NOTHING;
SQL
echo "seed-postgres: corebank schema loaded ($(psql "$db" -X -At -c 'SELECT count(*) FROM corebank.party') parties, $(psql "$db" -X -At -c 'SELECT count(*) FROM corebank.card') cards)" >&2
