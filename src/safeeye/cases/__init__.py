"""Cases: registration under a pseudonymous code, consent, references, purge."""
