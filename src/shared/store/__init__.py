"""The one DynamoDB table: key layout and one repository per item type.

Item types (pk / sk):
- INSTALLATION#<installationId> / INSTALLATION  - the installation, its tokens and refresh lease
- OAUTH_STATE#<state>           / OAUTH_STATE   - a launched flow's PKCE verifier (TTL: minutes)
"""
