-- Accepted values: channel groupings, device categories and e-commerce action types are from GA's lists.
-- failures: sessions (or hits) with a value outside the list.
SELECT 'ga_sessions.channelGrouping_accepted' AS check_name, COUNTIF(channelGrouping NOT IN (
  'Organic Search', 'Social', 'Direct', 'Referral', 'Paid Search', 'Affiliates', 'Display', '(Other)'
)) AS failures
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
UNION ALL
SELECT 'ga_sessions.deviceCategory_accepted', COUNTIF(device.deviceCategory NOT IN ('desktop', 'mobile', 'tablet'))
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions`
UNION ALL
SELECT 'ga_sessions.hits.action_type_accepted', COUNT(*)
FROM `{{ project }}.{{ ecommerce_dataset }}.ga_sessions` AS s, UNNEST(s.hits) AS h
WHERE h.eCommerceAction.action_type NOT IN ('0', '1', '2', '3', '4', '5', '6', '7', '8');
