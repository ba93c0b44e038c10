"""The one DynamoDB table: key layout and one repository per item type.

Item types (pk / sk):
- INSTALLATION#<installationId> / INSTALLATION  - the installation, its tokens and refresh lease
- OAUTH_STATE#<state>           / OAUTH_STATE   - a launched flow's PKCE verifier (TTL: minutes)
- <KIND>S#<installationId>#<0-15> / <KIND>#<id>#v<version> - one item per server version of a hydrated
  order, inventory item or product (kinds ORDER, INVENTORY_ITEM, PRODUCT; 16 partitions per tenant
  and kind; the newest is the greatest sort key; TTL: retention)
- INSTALLATION#<installationId> / STORE         - the store identity (siteId, widgetId)
- EVENT#<eventId>               / EVENT         - event log and de-duplication (TTL: retention)
- EVENT_KEY#<scope>#<idempotencyKey> / EVENT_KEY - the record of a processed event that has an idempotency
  key, instead of EVENT#<eventId>: one item de-duplicates both the event ID and the key, per tenant (TTL: retention)
- BUSINESS_PRODUCT#<id>         / INSTALLATION_LINK - which installation a business product belongs to
- ATTENTION#<outcome>#<0-7>     / <time>#<eventId> - unroutable / failed / re-authorisation events, replayable
"""
