-- Global default codes. Vinoshipper's UPS shipper codes are the table in Commerce7's help
-- article on syncing orders to Vinoshipper; merchants give their Commerce7 shipping methods
-- those same codes (in `code`, with carrier "UPS"), so both systems share them.

INSERT INTO systems (system) VALUES ('commerce7'), ('vinoshipper');

INSERT INTO service_codes
    (system, tenant_id, code, name, carrier, canonical_carrier, canonical_service)
VALUES
    ('vinoshipper', '', '01', 'UPS Next Day Air', 'UPS', 'UPS', 'UPS_NEXT_DAY_AIR'),
    ('vinoshipper', '', '02', 'UPS 2nd Day Air',  'UPS', 'UPS', 'UPS_2ND_DAY_AIR'),
    ('vinoshipper', '', '03', 'UPS Ground',       'UPS', 'UPS', 'UPS_GROUND'),
    ('vinoshipper', '', '12', 'UPS 3 Day Select', 'UPS', 'UPS', 'UPS_3_DAY_SELECT'),
    ('commerce7',   '', '01', 'UPS Next Day Air', 'UPS', 'UPS', 'UPS_NEXT_DAY_AIR'),
    ('commerce7',   '', '02', 'UPS 2nd Day Air',  'UPS', 'UPS', 'UPS_2ND_DAY_AIR'),
    ('commerce7',   '', '03', 'UPS Ground',       'UPS', 'UPS', 'UPS_GROUND'),
    ('commerce7',   '', '12', 'UPS 3 Day Select', 'UPS', 'UPS', 'UPS_3_DAY_SELECT');
