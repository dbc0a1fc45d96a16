//! `GetRandomPassword` and `GenerateSecretString`: Secrets Manager's password rules (pure, with
//! the randomness passed in).

/// The options both share, with Secrets Manager's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordSpec {
    pub length: usize,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    pub require_each_included_type: bool,
}

impl Default for PasswordSpec {
    fn default() -> Self {
        PasswordSpec {
            length: 32,
            exclude_characters: String::new(),
            exclude_numbers: false,
            exclude_punctuation: false,
            exclude_uppercase: false,
            exclude_lowercase: false,
            include_space: false,
            require_each_included_type: true,
        }
    }
}

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl PasswordSpec {
    /// The character classes in play, each without the excluded characters; an error names what
    /// makes the request impossible.
    fn classes(&self) -> Result<Vec<Vec<char>>, String> {
        let mut classes: Vec<Vec<char>> = Vec::new();
        let mut add = |on: bool, chars: &mut dyn Iterator<Item = char>| {
            if on {
                let kept: Vec<char> = chars
                    .filter(|c| !self.exclude_characters.contains(*c))
                    .collect();
                if !kept.is_empty() {
                    classes.push(kept);
                }
            }
        };
        add(!self.exclude_lowercase, &mut ('a'..='z'));
        add(!self.exclude_uppercase, &mut ('A'..='Z'));
        add(!self.exclude_numbers, &mut ('0'..='9'));
        add(!self.exclude_punctuation, &mut PUNCTUATION.chars());
        add(self.include_space, &mut std::iter::once(' '));
        if classes.is_empty() {
            return Err(
                "The password must contain at least one character type: you excluded them all."
                    .into(),
            );
        }
        if self.length == 0 || self.length > 4096 {
            return Err("PasswordLength must be between 1 and 4096.".into());
        }
        if self.require_each_included_type && self.length < classes.len() {
            return Err("Password length is too short based on the required types.".into());
        }
        Ok(classes)
    }

    /// A password; `random(n)` returns a uniform number below `n`.
    pub fn generate(&self, random: &mut dyn FnMut(usize) -> usize) -> Result<String, String> {
        let classes = self.classes()?;
        let all: Vec<char> = classes.iter().flatten().copied().collect();
        let mut out: Vec<char> = (0..self.length).map(|_| all[random(all.len())]).collect();
        if self.require_each_included_type {
            // One of each class at distinct random places.
            let mut places: Vec<usize> = (0..self.length).collect();
            for class in &classes {
                let at = places.swap_remove(random(places.len()));
                out[at] = class[random(class.len())];
            }
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl FnMut(usize) -> usize {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    #[test]
    fn passwords_follow_the_requested_rules() {
        let mut r = rng();
        let p = PasswordSpec::default().generate(&mut r).unwrap();
        assert_eq!(p.len(), 32);
        for class in [
            |c: char| c.is_ascii_lowercase(),
            |c: char| c.is_ascii_uppercase(),
            |c: char| c.is_ascii_digit(),
            |c: char| PUNCTUATION.contains(c),
        ] {
            assert!(p.chars().any(class), "{p}");
        }
        let spec = PasswordSpec {
            length: 12,
            exclude_punctuation: true,
            exclude_characters: "abcABC".into(),
            ..Default::default()
        };
        for _ in 0..50 {
            let p = spec.generate(&mut r).unwrap();
            assert_eq!(p.chars().count(), 12);
            assert!(
                p.chars()
                    .all(|c| c.is_ascii_alphanumeric() && !"abcABC".contains(c)),
                "{p}"
            );
        }
    }

    #[test]
    fn impossible_requests_say_why() {
        let mut r = rng();
        let none = PasswordSpec {
            exclude_numbers: true,
            exclude_punctuation: true,
            exclude_uppercase: true,
            exclude_lowercase: true,
            ..Default::default()
        };
        assert!(none.generate(&mut r).is_err());
        let short = PasswordSpec {
            length: 3,
            ..Default::default()
        };
        assert!(short.generate(&mut r).unwrap_err().contains("too short"));
        let long = PasswordSpec {
            length: 5000,
            ..Default::default()
        };
        assert!(long.generate(&mut r).is_err());
    }
}
