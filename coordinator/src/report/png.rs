//! The SVG figures as PNG, for slides, documents and chat that do not take SVG: rendered by resvg
//! with the system's fonts.

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{Color, IntSize, Pixmap, Transform};
use resvg::usvg::{self, fontdb};

/// Pixels per SVG pixel: a 960×620 figure becomes 1920×1240, sharp on high-density screens and
/// in print at slide size.
pub const PNG_SCALE: f32 = 2.0;

/// Families tried, in order, for the generic `sans-serif` the figures ask for. fontdb maps it to
/// Arial by default, which Linux machines seldom have; with no match the text is silently left
/// out.
const SANS_SERIF_PREFERENCES: [&str; 5] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Arial",
    "Helvetica",
    "Noto Sans",
];

#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error(
        "no fonts found on this system, so the figure's text cannot be drawn (install one, for \
         example Debian's fonts-dejavu-core)"
    )]
    NoFonts,

    #[error("cannot read the SVG: {0}")]
    Svg(#[from] usvg::Error),

    #[error("a figure of {width}×{height} px at scale {PNG_SCALE} is too large to draw")]
    TooLarge { width: f32, height: f32 },

    #[error("cannot encode the PNG: {0}")]
    Encode(Box<dyn std::error::Error + Send + Sync>),
}

/// The system's fonts with `sans-serif` mapped to one that exists, loaded on first use: scanning
/// the font folders takes tens of milliseconds, and a report draws several figures.
struct SystemFonts {
    database: Arc<fontdb::Database>,
    /// None when the system has no fonts at all.
    sans_serif: Option<String>,
}

fn system_fonts() -> &'static SystemFonts {
    static FONTS: OnceLock<SystemFonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut database = fontdb::Database::new();
        database.load_system_fonts();
        let has_family = |family: &str| {
            database
                .faces()
                .any(|face| face.families.iter().any(|(name, _)| name == family))
        };
        let sans_serif = SANS_SERIF_PREFERENCES
            .iter()
            .find(|family| has_family(family))
            .map(|family| family.to_string())
            .or_else(|| {
                database
                    .faces()
                    .find_map(|face| face.families.first())
                    .map(|(name, _)| name.clone())
            });
        if let Some(family) = &sans_serif {
            database.set_sans_serif_family(family.clone());
        }
        SystemFonts {
            database: Arc::new(database),
            sans_serif,
        }
    })
}

/// An SVG document as a PNG image [`PNG_SCALE`] times its size, on white.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, PngError> {
    let fonts = system_fonts();
    let Some(sans_serif) = &fonts.sans_serif else {
        return Err(PngError::NoFonts);
    };
    let options = usvg::Options {
        fontdb: Arc::clone(&fonts.database),
        // For text without a font-family attribute; the figures always name one.
        font_family: sans_serif.clone(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options)?;
    let size = tree.size();
    let too_large = || PngError::TooLarge {
        width: size.width(),
        height: size.height(),
    };
    let pixels: IntSize = size
        .to_int_size()
        .scale_by(PNG_SCALE)
        .ok_or_else(too_large)?;
    let mut pixmap = Pixmap::new(pixels.width(), pixels.height()).ok_or_else(too_large)?;
    // Viewers show a transparent background as black or a checkerboard; the figures are drawn
    // for white.
    pixmap.fill(Color::WHITE);
    resvg::render(
        &tree,
        Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|error| PngError::Encode(Box::new(error)))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::report::SweepReport;
    use crate::report::survival::WidthSurvival;
    use crate::report::survival_svg;

    /// A finished sweep of two widths with survival curves and nothing else.
    pub(in crate::report) fn survival_report() -> SweepReport {
        let width = |width, curve: Vec<(f64, f64)>| WidthSurvival {
            width,
            trials: 2,
            replicates: 8,
            curve,
            probe_steps: 100,
        };
        SweepReport {
            total: 4,
            done: 4,
            survival: vec![
                width(16, vec![(10.0, 0.75), (40.0, 0.5)]),
                width(512, vec![(3.0, 0.25)]),
            ],
            ..SweepReport::empty("survival-test")
        }
    }

    /// Pixels in rows `rows` that are clearly not white.
    fn dark_pixels(image: &Pixmap, rows: std::ops::Range<u32>) -> usize {
        let width = image.width() as usize;
        image.pixels()[rows.start as usize * width..rows.end as usize * width]
            .iter()
            .filter(|pixel| pixel.red() < 160 || pixel.green() < 160 || pixel.blue() < 160)
            .count()
    }

    #[test]
    fn the_survival_figure_renders_at_twice_its_size_with_its_title_text() {
        let svg = survival_svg(&survival_report())
            .expect("trials report exit steps")
            .expect("drawn");
        let png = match svg_to_png(&svg) {
            Err(PngError::NoFonts) => panic!(
                "this machine has no fonts; the PNG figures need one (Debian: fonts-dejavu-core)"
            ),
            other => other.expect("rendered"),
        };
        assert_eq!(&png[1..4], b"PNG");
        let image = Pixmap::decode_png(&png).expect("a decodable PNG");
        assert_eq!((image.width(), image.height()), (1920, 1240));

        // The caption sits in the top margin, above the plotting area, where nothing but text is
        // drawn: dark pixels there are the rendered title (DejaVu at 22 px, scaled by 2).
        let title_band = dark_pixels(&image, 0..80);
        assert!(
            title_band > 500,
            "the title band has {title_band} dark pixels: the text was not drawn"
        );
        let whole = dark_pixels(&image, 0..image.height());
        assert!(
            whole > title_band + 5_000,
            "axes, labels and curves below the title: {whole} dark pixels"
        );
        let white = image
            .pixels()
            .iter()
            .filter(|pixel| pixel.red() == 255 && pixel.green() == 255 && pixel.blue() == 255)
            .count();
        assert!(
            white > image.pixels().len() / 2,
            "a white background: {white} white pixels"
        );
    }

    #[test]
    fn text_without_a_font_family_still_renders() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">
            <text x="4" y="30" font-size="24">Kaplan–Meier</text></svg>"#;
        let image = Pixmap::decode_png(&svg_to_png(svg).expect("rendered")).expect("decodable");
        assert_eq!((image.width(), image.height()), (400, 80));
        assert!(
            dark_pixels(&image, 0..80) > 200,
            "the default family is used"
        );
    }

    #[test]
    fn malformed_svg_is_an_error_not_a_blank_image() {
        assert!(matches!(svg_to_png("<svg"), Err(PngError::Svg(_))));
    }
}
