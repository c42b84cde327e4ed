"""ShipStation connector (provider): API v1 bulk orders, shipments, SHIP_NOTIFY, rates, Custom Store."""
