"""The HL7 CDS Hooks 2.0 service: imaging appropriateness advice when an EHR drafts an order.

Endpoints (routes in imaging_advisor/urls.py, views in `views`):

- ``GET  /cds-services``: discovery. One service per hook, ``imaging-advisor-order-select`` and
  ``imaging-advisor-order-sign``; callable without a JWT.
- ``POST /cds-services/<service id>``: invocation. The older ``imaging-advisor`` answers both
  hooks (the body's ``hook`` says which fired); a per-hook id refuses the other hook.
- ``POST /cds-services/<service id>/feedback``: what the clinician did with a card.

Parts: `request` reads a call (orders, prefetch; bad entries skipped and reported), `fetch` gets
what the prefetch lacked from the EHR's FHIR server, `codes` compares code systems by URI or OID,
`record` reads answers from the record, `orders` finds which orders a topic covers (a whole
spine as three regional orders included) and writes a procedure as orders, `cards` and `pama`
build the advice, `links` the wizard
and SMART links (and reads `appContext` back), `auth` checks the EHR's JWT, `feedback` and
`consultations` store what happened, `discovery` and `views` serve it. All but the last three
are pure functions over plain values, unit-tested without HTTP.
"""
