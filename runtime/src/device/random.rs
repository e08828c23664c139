/// A source of cryptographically secure random bytes.
///
/// # Contract
/// * [`fill`](Random::fill) MUST fill all of `buf` with output fit for keys and nonces, or
///   panic. It MUST NOT return predictable bytes, such as output before the generator was seeded.
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}
