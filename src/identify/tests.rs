use super::*;
use crate::inventory::SynSignature;

fn device(facts: &[(&'static str, &'static str, &str)]) -> Device {
    let mut d = Device::default();
    for (s, f, v) in facts {
        d.evidence.push(((s, f), v.to_string()));
    }
    d
}

#[test]
fn tplink_plug_from_its_sysinfo_and_oui() {
    let mut d = device(&[
        ("tplink", "model", "HS110(US)"),
        ("tplink", "sw_ver", "1.2.5 Build 171206 Rel.085954"),
        ("tplink", "type", "IOT.SMARTPLUGSWITCH"),
        ("dns", "query", "devs.tplinkcloud.com"),
    ]);
    let id = Identifier::default().identify(Some([0x50, 0xc7, 0xbf, 0x33, 0x1f, 0x09]), &mut d);
    assert_eq!(id.vendor.as_deref(), Some("TP-Link"));
    assert_eq!(id.model.as_deref(), Some("HS110(US)"));
    assert_eq!(id.firmware.as_deref(), Some("1.2.5 Build 171206"));
    assert_eq!(id.kind.as_deref(), Some("smart-plug"));
    assert!(id.confidence["vendor"] > 0.9);
    let oui = id.evidence.iter().find(|e| e.signal == "oui").unwrap();
    assert_eq!(oui.value, "TP-LINK TECHNOLOGIES CO.,LTD.");
    assert_eq!(oui.claims["vendor"], "TP-Link");
}

#[test]
fn randomised_mac_names_no_vendor() {
    let mut d = device(&[("dhcp", "vendor_class", "android-dhcp-11")]);
    // 0x52: locally administered bit set (an Android randomised MAC).
    let id = Identifier::default().identify(Some([0x52, 0xc7, 0xbf, 0x33, 0x1f, 0x09]), &mut d);
    assert!(id.randomised_mac);
    assert_eq!(id.vendor, None);
    assert_eq!(id.os.as_deref(), Some("Android 11"));
    assert_eq!(id.kind.as_deref(), Some("phone"));
}

#[test]
fn module_maker_loses_to_the_product_maker() {
    // An Espressif module in a lock hub that names its maker by DHCP hostname.
    let mut d = device(&[("dhcp", "hostname", "PGH200")]);
    let id = Identifier::default().identify(Some([0x24, 0x6f, 0x28, 1, 2, 3]), &mut d);
    assert_eq!(id.vendor.as_deref(), Some("Lockly"));
    assert_eq!(id.kind.as_deref(), Some("hub"));
    assert_eq!(id.hostname.as_deref(), Some("PGH200"));
}

#[test]
fn syn_signature_and_long_values() {
    let mut d = device(&[("upnp", "model_name", &"X".repeat(500))]);
    d.syns[0] = Some(SynSignature::of(
        false,
        57,
        64240,
        &[
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ],
    ));
    let id = Identifier::default().identify(None, &mut d);
    assert_eq!(id.os.as_deref(), Some("Linux"));
    assert_eq!(id.model.as_ref().unwrap().len(), MAX_CLAIM);
    let syn = id.evidence.iter().find(|e| e.signal == "tcp").unwrap();
    assert_eq!(
        syn.value,
        "ip=4 ittl=64 win=64240 mss=1460 ws=7 opts=mss,sok,ts,nop,ws"
    );
}

#[test]
fn disagreeing_signals_lower_confidence() {
    let one = Identifier::default().identify(
        None,
        &mut device(&[(
            "http",
            "user_agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        )]),
    );
    let two = Identifier::default().identify(
        None,
        &mut device(&[
            (
                "http",
                "user_agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            ),
            ("dhcp", "vendor_class", "android-dhcp-9"),
        ]),
    );
    assert!(two.confidence["os"] < one.confidence["os"]);
}

#[test]
fn claim_keys_are_found_by_their_borrowed_form() {
    use std::hash::BuildHasher;
    let fx = rustc_hash::FxBuildHasher;
    let owned = ("dhcp", "hostname", "Living-Room-TV".to_string());
    let borrowed = ClaimKey("dhcp", "hostname", "Living-Room-TV");
    assert_eq!(fx.hash_one(&borrowed), fx.hash_one(&owned));
    assert!(hashbrown::Equivalent::equivalent(&borrowed, &owned));
    assert_eq!(borrowed.to_key(), owned);
}
