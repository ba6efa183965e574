"""SMART App Launch (EHR launch): the EHR opens Imaging Advisor on a patient, the wizard pre-filled.

The flow (HL7 SMART App Launch 2.x, EHR launch, public client with PKCE):

1. ``GET /smart/launch?iss=…&launch=…`` (`views.launch`): `iss` must be one of SMART_ISSUERS;
   `<iss>/.well-known/smart-configuration` gives the authorization and token endpoints and must
   list S256 in `code_challenge_methods_supported`; the browser goes to the authorization
   endpoint with response_type=code, SMART_CLIENT_ID, the callback URL, SMART_SCOPES, a random
   `state`, `aud=iss`, `launch` and a PKCE S256 challenge. State, verifier and issuer wait in a
   Django session of their own (cookie `smart_launch`, path /smart/, ten minutes).
2. ``GET /smart/callback?code=…&state=…`` (`views.callback`): a `state` that is not the one this
   browser was given is refused and nothing is kept; otherwise the pending launch is used up, the
   code is exchanged with the verifier, and the token response names the `patient` and may carry
   an `appContext` (from one of our CDS Hooks cards, signed: `decisions.cds_hooks.links`). The
   Patient and their Conditions are read with the access token through the CDS Hooks fetcher
   (`decisions.cds_hooks.fetch`: allow-list, one deadline, size limit, no redirects) and turned
   into answers by the same code that reads a hook's prefetch (`decisions.cds_hooks.record`).
   The browser lands on the wizard with those answers; the token and the patient id are dropped
   with the request, and nothing about the patient is stored.

Which client: Authlib's `OAuth2Session` (on requests) builds the authorization URL with the PKCE
S256 challenge and makes the token request with the verifier, and reads OAuth error answers: the
parts where a slip is a security bug. `fhirclient` (4.4) was considered: it does PKCE S256 and
returns the token response (so `appContext`) but discovers endpoints from the CapabilityStatement
(`/metadata`), not `.well-known/smart-configuration`, checks no S256 support, sets no timeout on
its requests, and keeps the access token in the state it asks the app to persist. Discovery is
one GET (requests, as under Authlib); the FHIR reads reuse the CDS Hooks fetcher rather than a
second FHIR client.
"""
