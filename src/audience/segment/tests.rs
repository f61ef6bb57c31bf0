use super::*;

fn parse(json: &str) -> Result<Segment, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn conditions_read_as_field_operator_and_value() {
    let segment = parse(
        r#"[{"field": "locality", "operator": "in", "value": ["stroud", "forest-of-dean", "stroud"]},
            {"field": "organisation", "operator": "given"},
            {"field": "signed_up", "operator": "before", "value": "2026-07-01"}]"#,
    )
    .unwrap()
    .check()
    .unwrap()
    .unwrap();
    assert_eq!(
        segment.0[0],
        Condition::Locality {
            operator: SetOperator::In,
            value: vec![Locality::ForestOfDean, Locality::Stroud],
        }
    );
    assert_eq!(
        segment.describe(),
        "in Forest of Dean or Stroud, and with an organisation, and signed up before 1 July 2026"
    );
    assert_eq!(Segment::from_json(&segment.to_json()).unwrap(), segment);
}

#[test]
fn what_is_not_a_condition_is_refused() {
    for bad in [
        r#"[{"field": "email", "operator": "in", "value": ["x"]}]"#,
        r#"[{"field": "locality", "operator": "like", "value": ["stroud"]}]"#,
        r#"[{"field": "locality", "operator": "in", "value": ["stroud' OR 1=1 --"]}]"#,
        r#"[{"field": "organisation", "operator": "given", "value": "x"}]"#,
        r#"[{"field": "signed_up", "operator": "before", "value": "1 March"}]"#,
        r#"{"field": "organisation", "operator": "given"}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad} was accepted");
    }
    let empty = parse(r#"[{"field": "locality", "operator": "in", "value": []}]"#).unwrap();
    assert!(empty.check().unwrap_err().contains("at least one locality"));
    let many = Segment(vec![
        Condition::Organisation {
            operator: Presence::Given
        };
        9
    ]);
    assert!(many.check().is_err());
    assert_eq!(Segment(vec![]).check().unwrap(), None);
    // Days no database can store (PostgreSQL's times start in 4713 BC) are refused.
    for (day, ok) in [
        ("-5000-01-01", false),
        ("1899-12-31", false),
        ("1900-01-01", true),
        ("2200-12-31", true),
        ("2201-01-01", false),
    ] {
        let segment = parse(&format!(
            r#"[{{"field": "signed_up", "operator": "before", "value": "{day}"}}]"#
        ))
        .unwrap();
        assert_eq!(segment.check().is_ok(), ok, "{day}");
    }
}

#[test]
fn the_sql_holds_placeholders_and_never_a_value() {
    let segment = Segment(vec![
        Condition::Locality {
            operator: SetOperator::NotIn,
            value: vec![Locality::Stroud, Locality::CountyWide],
        },
        Condition::SignedUp {
            operator: DayOperator::OnOrAfter,
            value: NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
        },
    ]);
    let filter = segment.filter(3);
    assert_eq!(
        filter.condition,
        "(s.locality IS NULL OR s.locality NOT IN ($3, $4)) AND sub.created_at >= $5"
    );
    // Midnight in July is 23:00 the day before in UTC.
    assert_eq!(
        filter.params,
        vec![
            Param::Text("stroud"),
            Param::Text("county-wide"),
            Param::Time("2026-06-30T23:00:00Z".parse().unwrap()),
        ]
    );
    assert_eq!(Segment::default().filter(1).condition, "1 = 1");
}
