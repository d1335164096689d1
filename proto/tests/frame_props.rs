//! The frame decoder against arbitrary bytes: thousands of random bodies,
//! split into random chunks, must each end in a message or an error, and
//! agree with a straightforward reading of the format.

use proto::grpc::frame::{encode, FrameError, UnaryBody, HEADER_LEN};

/// What a body should decode to, read the obvious way.
fn reference(body: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Missing);
    }
    if body.len() < HEADER_LEN {
        return Err(FrameError::Truncated {
            have: body.len(),
            want: HEADER_LEN,
        });
    }
    match body[0] {
        0 => {}
        1 => return Err(FrameError::Compressed),
        f => return Err(FrameError::BadFlag(f)),
    }
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let want = HEADER_LEN + len;
    match body.len().cmp(&want) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated {
            have: body.len(),
            want,
        }),
        std::cmp::Ordering::Greater => Err(FrameError::Trailing),
        std::cmp::Ordering::Equal => Ok(body[HEADER_LEN..].to_vec()),
    }
}

fn decode_in_chunks(
    body: &[u8],
    max: usize,
    rng: &mut fastrand::Rng,
) -> Result<Vec<u8>, FrameError> {
    let mut decoder = UnaryBody::new(max);
    let mut rest = body;
    while !rest.is_empty() {
        let n = rng.usize(0..=rest.len().min(12));
        let (chunk, tail) = rest.split_at(n);
        decoder.push(chunk)?;
        rest = tail;
    }
    decoder.finish().map(|b| b.to_vec())
}

/// Random bodies biased towards the interesting cases: valid frames, small
/// lengths, flags 0 and 1, truncations and extra bytes.
fn random_body(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(0..5) {
        0 => (0..rng.usize(0..40)).map(|_| rng.u8(..)).collect(),
        1 => {
            let msg: Vec<u8> = (0..rng.usize(0..30)).map(|_| rng.u8(..)).collect();
            encode(&msg).to_vec()
        }
        2 => {
            let mut b = encode(
                &(0..rng.usize(0..30))
                    .map(|_| rng.u8(..))
                    .collect::<Vec<_>>(),
            )
            .to_vec();
            let cut = rng.usize(0..=b.len());
            b.truncate(cut);
            b
        }
        3 => {
            let mut b = encode(
                &(0..rng.usize(0..30))
                    .map(|_| rng.u8(..))
                    .collect::<Vec<_>>(),
            )
            .to_vec();
            b.extend((0..rng.usize(1..10)).map(|_| rng.u8(..)));
            b
        }
        _ => {
            let mut b = vec![rng.u8(0..3)];
            b.extend_from_slice(&rng.u32(..).to_be_bytes());
            b.extend((0..rng.usize(0..20)).map(|_| rng.u8(..)));
            b
        }
    }
}

#[test]
fn decoder_agrees_with_reference_on_random_input() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_f4a3e);
    let mut ok = 0;
    for _ in 0..20_000 {
        let body = random_body(&mut rng);
        let max = if rng.bool() { 16 } else { 4 * 1024 * 1024 };
        let want = reference(&body, max);
        let got = decode_in_chunks(&body, max, &mut rng);
        // The decoder may stop early (e.g. at Trailing before the body ends)
        // but must reach the same verdict as reading the whole body.
        assert_eq!(got, want, "body {body:?} max {max}");
        ok += got.is_ok() as usize;
    }
    assert!(ok > 2_000, "too few valid cases exercised: {ok}");
}

#[test]
fn valid_messages_round_trip() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2_000 {
        let msg: Vec<u8> = (0..rng.usize(0..3000)).map(|_| rng.u8(..)).collect();
        let wire = encode(&msg);
        assert_eq!(decode_in_chunks(&wire, msg.len(), &mut rng), Ok(msg));
    }
}
