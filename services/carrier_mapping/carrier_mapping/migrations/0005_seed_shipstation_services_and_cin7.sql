-- ShipStation's API v1 carriers and services, and the carrier text Cin7 Omni is written.
--
-- shipstation: v1 labels (GET /shipments, SHIP_NOTIFY re-reads) name a `carrierCode` and a
--   `serviceCode` (ShipStation's `GET /carriers/listservices` spellings). Each carrierCode is an
--   accepted spelling of the carrier-level code 0004 seeded from the Custom Store ship notice
--   (Stamps.com is how ShipStation buys USPS labels); each serviceCode is a code of its own, its
--   `carrier` the carrierCode it is bought with, so a translation into ShipStation gives both
--   values createorder and getrates take.
-- cin7: a sales order has one free-text `logisticsCarrier`, which holds carrier and service
--   together ("UPS Ground"), so each code's `carrier` is that whole text. A carrier-level code
--   per carrier answers for any service not listed. Tenants whose Cin7 carriers read otherwise
--   add their own mappings (tenant overrides win).

UPDATE service_codes SET aliases = ARRAY['stamps_com', 'usps'], updated_at = now()
    WHERE system = 'shipstation' AND tenant_id = '' AND code = 'USPS';
UPDATE service_codes SET aliases = ARRAY['ups', 'ups_walleted'], updated_at = now()
    WHERE system = 'shipstation' AND tenant_id = '' AND code = 'UPS';
UPDATE service_codes SET aliases = ARRAY['fedex', 'fedex_walleted'], updated_at = now()
    WHERE system = 'shipstation' AND tenant_id = '' AND code = 'FedEx';
UPDATE service_codes SET aliases = ARRAY['dhl_express'], updated_at = now()
    WHERE system = 'shipstation' AND tenant_id = '' AND code = 'DHL';

INSERT INTO service_codes
    (system, tenant_id, code, name, carrier, canonical_carrier, canonical_service)
VALUES
    ('shipstation', '', 'usps_first_class_mail',      'USPS First Class Mail',        'stamps_com', 'USPS',  'USPS_FIRST_CLASS_MAIL'),
    ('shipstation', '', 'usps_priority_mail',         'USPS Priority Mail',           'stamps_com', 'USPS',  'USPS_PRIORITY_MAIL'),
    ('shipstation', '', 'usps_priority_mail_express', 'USPS Priority Mail Express',   'stamps_com', 'USPS',  'USPS_PRIORITY_MAIL_EXPRESS'),
    ('shipstation', '', 'usps_parcel_select',         'USPS Parcel Select Ground',    'stamps_com', 'USPS',  'USPS_PARCEL_SELECT'),
    ('shipstation', '', 'usps_media_mail',            'USPS Media Mail',              'stamps_com', 'USPS',  'USPS_MEDIA_MAIL'),
    ('shipstation', '', 'ups_ground',                 'UPS® Ground',                  'ups',        'UPS',   'UPS_GROUND'),
    ('shipstation', '', 'ups_3_day_select',           'UPS 3 Day Select®',            'ups',        'UPS',   'UPS_3_DAY_SELECT'),
    ('shipstation', '', 'ups_2nd_day_air',            'UPS 2nd Day Air®',             'ups',        'UPS',   'UPS_2ND_DAY_AIR'),
    ('shipstation', '', 'ups_next_day_air_saver',     'UPS Next Day Air Saver®',      'ups',        'UPS',   'UPS_NEXT_DAY_AIR_SAVER'),
    ('shipstation', '', 'ups_next_day_air',           'UPS Next Day Air®',            'ups',        'UPS',   'UPS_NEXT_DAY_AIR'),
    ('shipstation', '', 'fedex_ground',               'FedEx Ground®',                'fedex',      'FEDEX', 'FEDEX_GROUND'),
    ('shipstation', '', 'fedex_home_delivery',        'FedEx Home Delivery®',         'fedex',      'FEDEX', 'FEDEX_HOME_DELIVERY'),
    ('shipstation', '', 'fedex_express_saver',        'FedEx Express Saver®',         'fedex',      'FEDEX', 'FEDEX_EXPRESS_SAVER'),
    ('shipstation', '', 'fedex_2day',                 'FedEx 2Day®',                  'fedex',      'FEDEX', 'FEDEX_2DAY'),
    ('shipstation', '', 'fedex_standard_overnight',   'FedEx Standard Overnight®',    'fedex',      'FEDEX', 'FEDEX_STANDARD_OVERNIGHT'),
    ('shipstation', '', 'fedex_priority_overnight',   'FedEx Priority Overnight®',    'fedex',      'FEDEX', 'FEDEX_PRIORITY_OVERNIGHT'),
    ('shipstation', '', 'dhl_express_worldwide',      'DHL Express Worldwide',        'dhl_express','DHL',   'DHL_EXPRESS_WORLDWIDE'),
    ('cin7', '', 'USPS',                       'USPS',                       'USPS',                       'USPS',  ''),
    ('cin7', '', 'USPS First Class Mail',      'USPS First Class Mail',      'USPS First Class Mail',      'USPS',  'USPS_FIRST_CLASS_MAIL'),
    ('cin7', '', 'USPS Priority Mail',         'USPS Priority Mail',         'USPS Priority Mail',         'USPS',  'USPS_PRIORITY_MAIL'),
    ('cin7', '', 'USPS Priority Mail Express', 'USPS Priority Mail Express', 'USPS Priority Mail Express', 'USPS',  'USPS_PRIORITY_MAIL_EXPRESS'),
    ('cin7', '', 'USPS Parcel Select Ground',  'USPS Parcel Select Ground',  'USPS Parcel Select Ground',  'USPS',  'USPS_PARCEL_SELECT'),
    ('cin7', '', 'USPS Media Mail',            'USPS Media Mail',            'USPS Media Mail',            'USPS',  'USPS_MEDIA_MAIL'),
    ('cin7', '', 'UPS',                        'UPS',                        'UPS',                        'UPS',   ''),
    ('cin7', '', 'UPS Ground',                 'UPS Ground',                 'UPS Ground',                 'UPS',   'UPS_GROUND'),
    ('cin7', '', 'UPS 3 Day Select',           'UPS 3 Day Select',           'UPS 3 Day Select',           'UPS',   'UPS_3_DAY_SELECT'),
    ('cin7', '', 'UPS 2nd Day Air',            'UPS 2nd Day Air',            'UPS 2nd Day Air',            'UPS',   'UPS_2ND_DAY_AIR'),
    ('cin7', '', 'UPS Next Day Air Saver',     'UPS Next Day Air Saver',     'UPS Next Day Air Saver',     'UPS',   'UPS_NEXT_DAY_AIR_SAVER'),
    ('cin7', '', 'UPS Next Day Air',           'UPS Next Day Air',           'UPS Next Day Air',           'UPS',   'UPS_NEXT_DAY_AIR'),
    ('cin7', '', 'FedEx',                      'FedEx',                      'FedEx',                      'FEDEX', ''),
    ('cin7', '', 'FedEx Ground',               'FedEx Ground',               'FedEx Ground',               'FEDEX', 'FEDEX_GROUND'),
    ('cin7', '', 'FedEx Home Delivery',        'FedEx Home Delivery',        'FedEx Home Delivery',        'FEDEX', 'FEDEX_HOME_DELIVERY'),
    ('cin7', '', 'FedEx Express Saver',        'FedEx Express Saver',        'FedEx Express Saver',        'FEDEX', 'FEDEX_EXPRESS_SAVER'),
    ('cin7', '', 'FedEx 2Day',                 'FedEx 2Day',                 'FedEx 2Day',                 'FEDEX', 'FEDEX_2DAY'),
    ('cin7', '', 'FedEx Standard Overnight',   'FedEx Standard Overnight',   'FedEx Standard Overnight',   'FEDEX', 'FEDEX_STANDARD_OVERNIGHT'),
    ('cin7', '', 'FedEx Priority Overnight',   'FedEx Priority Overnight',   'FedEx Priority Overnight',   'FEDEX', 'FEDEX_PRIORITY_OVERNIGHT'),
    ('cin7', '', 'DHL',                        'DHL',                        'DHL',                        'DHL',   ''),
    ('cin7', '', 'DHL Express Worldwide',      'DHL Express Worldwide',      'DHL Express Worldwide',      'DHL',   'DHL_EXPRESS_WORLDWIDE');

