"""The operations layer: business rules, authorization and transactions. No transport imports here."""
