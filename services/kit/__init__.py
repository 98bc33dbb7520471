"""What every Atrium service shares: bus, database, migrations, token verification, logging."""
