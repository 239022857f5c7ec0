"""Billing building blocks without database or transport: plans, payment providers (Polar, Stripe),
webhook signatures, key encryption and the payment-method table. Business rules live in resolvers/."""
