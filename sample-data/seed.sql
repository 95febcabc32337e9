SET client_min_messages = warning;
-- A small core-banking schema, as a bank's database might have it, and the
-- two views etl reads (source.type: postgres). The views are the contract:
-- they return the columns of the CSV format (README, "Input format"), any
-- type; timestamps and dates are converted by etl.
-- Load: psql -v ON_ERROR_STOP=1 -f sample-data/seed.sql, then
-- scripts/seed-postgres.sh fills the tables from the sample CSV files.
DROP SCHEMA IF EXISTS corebank CASCADE;
CREATE SCHEMA corebank;

CREATE TABLE corebank.program (
    program_id   text PRIMARY KEY,
    program_name text NOT NULL
);

CREATE TABLE corebank.party (
    party_id           text PRIMARY KEY,
    household_party_id text,
    program_id         text REFERENCES corebank.program,
    given_name         text,
    middle_name        text,
    family_name        text,
    email              text,
    mobile             text,
    birth_date         date,
    status             text NOT NULL DEFAULT 'ACTIVE',
    opened_at          timestamptz NOT NULL,
    rewards_start      timestamptz,
    rewards_end        timestamptz,
    loyalty_member_no  text
);

CREATE TABLE corebank.party_address (
    party_id    text REFERENCES corebank.party,
    kind        text NOT NULL,           -- LEGAL, MAILING
    line1       text,
    line2       text,
    city        text,
    region      text,
    postcode    text,
    country_iso text,
    PRIMARY KEY (party_id, kind)
);

CREATE TABLE corebank.account (
    account_no   text PRIMARY KEY,
    product_type text NOT NULL,          -- DDA, CREDIT
    status       text NOT NULL,
    portfolio    text,
    opened_on    timestamptz,
    closed_on    timestamptz
);

CREATE TABLE corebank.card (
    card_ref      text PRIMARY KEY,
    account_no    text REFERENCES corebank.account,
    party_id      text,                  -- the cardholder
    pan           text NOT NULL,
    cvv           text,
    exp_month     int,
    exp_year      int,
    funding       text,                  -- credit, debit
    scheme        text,
    embossed_name text,
    billing_zip   text,
    status        text,
    network_code  int,
    issued_on     timestamptz,
    closed_on     timestamptz,
    is_primary    boolean,
    nickname      text
);
CREATE INDEX card_party ON corebank.card (party_id);

CREATE VIEW corebank.etl_customers_v AS
SELECT p.party_id            AS customer_id,
       p.household_party_id  AS parent_customer_id,
       p.program_id          AS organization_id,
       g.program_name        AS organization_name,
       p.given_name          AS first_name,
       p.middle_name,
       p.family_name         AS last_name,
       p.email,
       p.mobile              AS phone,
       p.birth_date          AS date_of_birth,
       a.line1               AS address_line1,
       a.line2               AS address_line2,
       a.city,
       a.region              AS state,
       a.postcode            AS postal_code,
       a.country_iso         AS country,
       p.status,
       p.opened_at           AS created_at,
       p.rewards_start       AS enrollment_start,
       p.rewards_end         AS enrollment_end,
       p.loyalty_member_no   AS member_id
FROM corebank.party p
LEFT JOIN corebank.program g USING (program_id)
LEFT JOIN corebank.party_address a ON a.party_id = p.party_id AND a.kind = 'LEGAL';

CREATE VIEW corebank.etl_cards_v AS
SELECT c.card_ref      AS card_id,
       c.party_id      AS customer_id,
       c.account_no    AS account_id,
       ac.product_type AS account_type,
       ac.status       AS account_status,
       ac.portfolio    AS portfolio_id,
       ac.opened_on    AS account_open_date,
       ac.closed_on    AS account_close_date,
       c.pan,
       c.cvv,
       c.exp_month,
       c.exp_year,
       c.funding       AS card_type,
       c.scheme        AS brand,
       c.embossed_name AS name_on_card,
       c.billing_zip,
       c.status        AS card_status,
       c.network_code  AS network_id,
       c.issued_on     AS open_date,
       c.closed_on     AS close_date,
       c.is_primary    AS is_default,
       c.nickname      AS label
FROM corebank.card c
LEFT JOIN corebank.account ac USING (account_no);
