//! A small table of public address blocks and the country they are registered to, used to give
//! generated logins plausible source addresses (no documentation ranges, which real logs never show).

use rand::Rng;

/// IPv4 blocks: first octets (prefix) and ISO country code.
const V4: &[(&[u8], &str)] = &[
    (&[73], "US"),        // Comcast
    (&[98], "US"),        // US broadband (ARIN)
    (&[24], "US"),        // US cable (ARIN)
    (&[81, 2, 69], "GB"), // as in the samples
    (&[86, 128], "GB"),   // BT
    (&[79, 192], "DE"),   // Deutsche Telekom
    (&[91, 0], "DE"),     // Deutsche Telekom
    (&[90, 10], "FR"),    // Orange
    (&[126], "JP"),       // SoftBank
    (&[175, 16], "CN"),   // as in the samples
    (&[177, 32], "BR"),   // LACNIC, Brazil
    (&[49, 36], "IN"),    // Reliance Jio
    (&[95, 24], "RU"),    // Beeline
    (&[1, 128], "AU"),    // Telstra, as in the samples
    (&[105, 112], "NG"),  // Airtel Nigeria
    (&[174, 88], "CA"),   // Bell Canada
    (&[41, 13], "EG"),    // TE Data
    (&[185, 199], "NL"),  // RIPE, as in the samples
    (&[110, 54], "KR"),   // Korea Telecom
    (&[200, 68], "MX"),   // Telmex
];

/// IPv6 prefixes (first two hextets) and country.
const V6: &[(&str, &str)] = &[
    ("2600:1700", "US"), // AT&T
    ("2a02:c7f", "GB"),  // Sky
    ("2a01:e0a", "FR"),  // Free
    ("2003:e2", "DE"),   // Deutsche Telekom
    ("240b:10", "JP"),   // SoftBank
];

/// A random public address from the table, with its country.
pub fn random_public_ip<R: Rng + ?Sized>(rng: &mut R) -> (String, &'static str) {
    if rng.random_bool(0.08) {
        let (prefix, cc) = V6[rng.random_range(0..V6.len())];
        let ip = format!(
            "{prefix}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
            rng.random_range(1..0xffffu32),
            rng.random_range(0..0xffffu32),
            rng.random_range(0..0xffffu32),
            rng.random_range(0..0xffffu32),
            rng.random_range(0..0xffffu32),
            rng.random_range(1..0xffffu32),
        );
        return (ip, cc);
    }
    let (prefix, cc) = V4[rng.random_range(0..V4.len())];
    let mut octets: Vec<u8> = prefix.to_vec();
    while octets.len() < 4 {
        let last = octets.len() == 3;
        octets.push(if last {
            rng.random_range(1..=254)
        } else {
            rng.random_range(0..=255)
        });
    }
    let ip = octets
        .iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(".");
    (ip, cc)
}

/// Country of an address produced by [`random_public_ip`] (or `None`: private, unknown, `Unknown IP`).
pub fn country_for_ip(ip: &str) -> Option<&'static str> {
    if ip.contains(':') {
        return V6
            .iter()
            .find(|(p, _)| ip.starts_with(&format!("{p}:")))
            .map(|(_, cc)| *cc);
    }
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    if octets.len() != 4 {
        return None;
    }
    V4.iter()
        .filter(|(p, _)| octets.starts_with(p))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, cc)| *cc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Proves every generated address parses as an IP and maps back to the country it was drawn with.
    #[test]
    fn generated_addresses_round_trip_to_country() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let (ip, cc) = random_public_ip(&mut rng);
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
            assert_eq!(country_for_ip(&ip), Some(cc), "{ip}");
        }
        assert_eq!(country_for_ip("Unknown IP"), None);
        assert_eq!(country_for_ip("10.10.10.10"), None);
    }
}
