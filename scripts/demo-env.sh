# Sourced by the demo and the README walk-throughs: points the sample config
# at the sandboxes and supplies their demo credentials. Never use these
# values against a real partner.
addr="${1:-127.0.0.1:18099}"
export ETL_HMAC_KEY="${ETL_HMAC_KEY:-demo-only-hmac-key-0123456789abcdef}"
for p in datafeed q2open synctera clubready tokenization; do
  up=$(echo "$p" | tr a-z A-Z)
  export "ETL_${up}_BASE_URL=http://$addr/$p$( [ "$p" = synctera ] && echo /v0 || true)"
done
export ETL_CLUBREADY_OPT_VAULT_URL="http://$addr/clubready"
export SANDBOX_Q2OPEN_TOKEN=sandbox-q2open-token
export SANDBOX_SYNCTERA_TOKEN=sandbox-synctera-token
export SANDBOX_CLUBREADY_API_KEY=sandbox-clubready-apikey
export SANDBOX_CLUBREADY_VAULT_KEY=sandbox-clubready-vaultkey
export SANDBOX_TOKENIZATION_USER=sandbox-user
export SANDBOX_TOKENIZATION_PASSWORD=sandbox-password
