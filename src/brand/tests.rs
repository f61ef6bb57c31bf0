use super::*;

fn problems(brand: Brand) -> Vec<(String, String)> {
    brand
        .check()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.field.to_string(), e.message))
        .collect()
}

#[test]
fn the_default_brand_passes_its_own_checks() {
    let checked = default_brand().check().unwrap();
    assert_eq!(checked, default_brand());
    assert_eq!(
        BrandVersion::first().consent_version,
        DEFAULT_CONSENT_VERSION
    );
}

#[test]
fn a_colour_pair_under_aa_is_refused_with_its_ratio() {
    let pale = Brand {
        header_colour: "#FFDD00".into(),
        link_colour: "#999".into(),
        ..default_brand()
    };
    let found = problems(pale);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, "header_text_colour");
    assert!(
        found[0].1.contains("(#ffffff on #ffdd00) is 1.34 to 1;"),
        "{}",
        found[0].1
    );
    assert_eq!(found[1].0, "link_colour");
    assert!(found[1].1.contains("2.84 to 1"), "{}", found[1].1);
    let dark_on_yellow = Brand {
        header_colour: "#ffdd00".into(),
        header_text_colour: "#0b0c0c".into(),
        ..default_brand()
    };
    assert_eq!(dark_on_yellow.check().unwrap().header_colour, "#ffdd00");
}

#[test]
fn fields_are_checked_and_trimmed() {
    let brand = Brand {
        newsletter: "  ".into(),
        privacy_url: "www.example.org/privacy".into(),
        contact: "call us".into(),
        header_colour: "navy".into(),
        ..default_brand()
    };
    let fields: Vec<String> = problems(brand).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["newsletter", "privacy_url", "contact", "header_colour"]
    );
    let fine = Brand {
        contact: " news@glos-vcse.org.uk ".into(),
        privacy_url: "https://glos-vcse.org.uk/privacy".into(),
        postal_address: "Unit 1\r\nStroud GL5 1AA\n".into(),
        ..default_brand()
    }
    .check()
    .unwrap();
    assert_eq!(fine.contact_href().unwrap(), "mailto:news@glos-vcse.org.uk");
    assert_eq!(fine.postal_address, "Unit 1\nStroud GL5 1AA");
}

#[test]
fn consent_versions_are_named_by_day_and_words() {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let a = consent_version_name("I agree.", day);
    assert!(a.starts_with("signup-2026-12-02-") && a.len() == 26, "{a}");
    assert_eq!(a, consent_version_name("I agree.", day));
    assert_ne!(a, consent_version_name("I agree!", day));
}
